"""Definition versions: sync, pinning, re-sync, and explicit migration of running instances.

Revision 2 of `review` renames `assess` to `evaluate` and adds a `legal` step after `sasac`, so it
is easy to see which revision an instance follows."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.cli.runner import Cli
from tests.services.support import (BIG, SMALL, act, events, instance, open_task, setup, start,
                                    tasks)
from workflow_app.models import ProcessDefinition
from workflow_app.services import trail
from workflow_app.services.definitions import DefinitionStore
from workflow_app.services.migration import migrate_instances
from workflow_app.services.workflow import Workflow

ROOT = Path(__file__).resolve().parents[2]
REV1 = (ROOT / "tests" / "fixtures" / "review.yaml").read_text(encoding="utf-8")
REV2 = (REV1.replace('version: "1"', 'version: "2"').replace("assess", "evaluate")
        .replace("  - {trigger: approve, source: sasac, dest: approved}",
                 "  - {trigger: approve, source: sasac, dest: legal}\n"
                 "  - {trigger: approve, source: legal, dest: approved}\n"
                 "  - {trigger: reject, source: legal, dest: rejected}")
        .replace("  - {id: approved, type: end",
                 "  - {id: legal, type: task, title: {zh: 法务审查}, assign: {department: audit, role: compliance}}\n"
                 "  - {id: approved, type: end"))


@pytest.fixture
def defs(tmp_path) -> Path:
    shutil.copy(ROOT / "process_defs" / "organisation.yaml", tmp_path)
    (tmp_path / "review.yaml").write_text(REV1, encoding="utf-8")
    return tmp_path


@pytest.fixture
def store(defs) -> DefinitionStore:
    return DefinitionStore(defs)


@pytest.fixture
def workflow(store, clock) -> Workflow:
    return Workflow(store, None, clock)


def sync(db, store, clock):
    with db.write() as s:
        return store.sync(s, clock())


def revisions(db) -> list[tuple[int, str, bool]]:
    with db.read() as s:
        return [(r.revision, r.version, r.is_latest) for r in s.scalars(
            select(ProcessDefinition).where(ProcessDefinition.key == "review").order_by(ProcessDefinition.revision))]


def definition_of(db, iid) -> int:
    with db.read() as s:
        return s.scalar(select(ProcessDefinition.revision).where(
            ProcessDefinition.id == instance(db, iid).definition_id))


def new_revision(defs: Path, db, store, clock):
    (defs / "review.yaml").write_text(REV2, encoding="utf-8")
    return sync(db, store, clock)


def test_sync_pins_running_instances_and_new_ones_use_the_newest(db, defs, store, workflow, clock):
    people = setup(db, store, clock)
    assert revisions(db) == [(1, "1", True)]
    [sync_event] = events(db, None)
    assert (sync_event.action, sync_event.details["revision"], sync_event.details["new"]) == ("definition_sync", 1, True)
    pinned = start(db, workflow, people["submitter"], data=SMALL)
    act(db, workflow, people["promo1"], pinned, "approve", open_task(db, pinned).id)

    [result] = new_revision(defs, db, store, clock)
    assert (result.revision, result.version, result.created) == (2, "2", True)
    assert revisions(db) == [(1, "1", False), (2, "2", True)]
    assert len(events(db, None)) == 2

    fresh = start(db, workflow, people["submitter"], data=SMALL)
    assert definition_of(db, fresh) == 2 and instance(db, fresh).current_step == "evaluate"
    assert definition_of(db, pinned) == 1
    act(db, workflow, people["sasac"], pinned, "approve", open_task(db, pinned).id)
    assert instance(db, pinned).status == "approved"         # revision 1: no legal step
    assert {e.definition_hash for e in events(db, pinned)} == {result_hash(db, 1)}
    act(db, workflow, people["promo1"], fresh, "approve", open_task(db, fresh).id)
    act(db, workflow, people["sasac"], fresh, "approve", open_task(db, fresh).id)
    assert instance(db, fresh).current_step == "legal"       # revision 2


def result_hash(db, revision: int) -> str:
    with db.read() as s:
        return s.scalar(select(ProcessDefinition.content_hash).where(ProcessDefinition.revision == revision))


def test_resync_of_an_unchanged_file_creates_nothing(db, store, clock):
    first = sync(db, store, clock)
    again = sync(db, store, clock)
    assert [(r.revision, r.created) for r in first] == [(1, True)]
    assert [(r.revision, r.created, r.content_hash) for r in again] == [(1, False, first[0].content_hash)]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessDefinition)) == 1
    assert len(events(db, None)) == 1


def test_reverting_a_file_makes_the_old_revision_newest_again(db, defs, store, clock):
    sync(db, store, clock)
    new_revision(defs, db, store, clock)
    (defs / "review.yaml").write_text(REV1, encoding="utf-8")
    [result] = sync(db, store, clock)
    assert (result.revision, result.created) == (1, False)
    assert revisions(db) == [(1, "1", True), (2, "2", False)]


def test_migrate_moves_running_instances_with_a_step_mapping(db, defs, store, workflow, clock):
    people = setup(db, store, clock)
    at_sasac = start(db, workflow, people["submitter"], data=SMALL)
    act(db, workflow, people["promo1"], at_sasac, "approve", open_task(db, at_sasac).id)
    at_assess = start(db, workflow, people["submitter"], data=BIG)
    done = start(db, workflow, people["submitter"], data=SMALL)
    act(db, workflow, people["submitter"], done, "withdraw")
    new_revision(defs, db, store, clock)
    before = {i: instance(db, i).trail_count for i in (at_sasac, at_assess, done)}

    with db.write() as s:
        moved = migrate_instances(s, store, workflow, "review", 1, 2, {"assess": "evaluate"})
    assert moved == [at_sasac, at_assess]
    assert definition_of(db, done) == 1 and instance(db, done).trail_count == before[done]
    for iid, step in ((at_sasac, "sasac"), (at_assess, "evaluate")):
        inst = instance(db, iid)
        assert (definition_of(db, iid), inst.current_step, inst.trail_count) == (2, step, before[iid] + 1)
        event = events(db, iid)[-1]
        assert event.action == "migrate" and event.definition_hash == result_hash(db, 2)
        assert (event.details["from_hash"], event.details["to_hash"]) == (result_hash(db, 1), result_hash(db, 2))
        assert (event.details["from_revision"], event.details["to_revision"]) == (1, 2)
    assert [t.step for t in tasks(db, at_assess, "cancelled")] == ["assess"]
    assert [t.step for t in tasks(db, at_assess, "open")] == ["evaluate"]
    act(db, workflow, people["promo2"], at_assess, "approve", open_task(db, at_assess).id)
    assert instance(db, at_assess).current_step == "joint"
    act(db, workflow, people["sasac"], at_sasac, "approve", open_task(db, at_sasac).id)
    assert instance(db, at_sasac).current_step == "legal"    # it follows revision 2 now
    with db.read() as s:
        assert trail.verify(s).ok


def test_migrate_refuses_unknown_steps_and_then_writes_nothing(db, defs, store, workflow, clock):
    people = setup(db, store, clock)
    first = start(db, workflow, people["submitter"], data=SMALL)
    act(db, workflow, people["promo1"], first, "approve", open_task(db, first).id)   # at sasac: movable
    second = start(db, workflow, people["submitter"], data=BIG)                      # at assess
    new_revision(defs, db, store, clock)
    snapshot = [(instance(db, i).definition_id, instance(db, i).trail_count, len(tasks(db, i)))
                for i in (first, second)]

    with pytest.raises(ValueError, match="not in revision 1: nosuch"):
        with db.write() as s:
            migrate_instances(s, store, workflow, "review", 1, 2, {"nosuch": "evaluate"})
    with pytest.raises(ValueError, match=f"instance {second} at step 'assess'"):
        with db.write() as s:  # `first` moves in this transaction, `second` cannot: all rolled back
            migrate_instances(s, store, workflow, "review", 1, 2, {})
    with pytest.raises(ValueError, match="can wait in"):
        with db.write() as s:
            migrate_instances(s, store, workflow, "review", 1, 2, {"assess": "approved"})
    with pytest.raises(ValueError, match="revision 3 not found"):
        with db.write() as s:
            migrate_instances(s, store, workflow, "review", 1, 3, {})
    assert [(instance(db, i).definition_id, instance(db, i).trail_count, len(tasks(db, i)))
            for i in (first, second)] == snapshot


def test_cli_migrate(db, defs, store, workflow, clock, database_url):
    people = setup(db, store, clock)
    iid = start(db, workflow, people["submitter"], data=BIG)
    new_revision(defs, db, store, clock)
    cli = Cli(database_url, defs)
    try:
        refused = cli("defs", "migrate", "review", "--from", "1", "--to", "2")
        assert refused.exit_code == 1 and "error:" in refused.stderr
        result = cli("defs", "migrate", "review", "--from", "1", "--to", "2", "--map", "assess=evaluate")
        assert result.exit_code == 0, result.output
        assert "1 instance(s) moved to revision 2" in result.stdout
    finally:
        cli.close()
    assert instance(db, iid).current_step == "evaluate"


def test_compiled_specs_are_keyed_by_content_hash_not_row_id(db, defs, tmp_path_factory, clock):
    """A definition id means what the database says (another database, a restore, an emptied and
    refilled one): one store serving two databases where id N holds different texts must compile
    each text, never hand out the spec it cached for the other."""
    store = DefinitionStore(defs)
    with db.write() as s:
        store.sync(s, clock())
        first_id = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.key == "review"))
    with db.read() as s:
        assert "assess" in store.spec(s, first_id).steps
    # The same id now holds revision 2's text (as it would in a restored or other database).
    other = DefinitionStore(defs)
    rev2 = tmp_path_factory.mktemp("rev2")
    shutil.copy(ROOT / "process_defs" / "organisation.yaml", rev2)
    (rev2 / "review.yaml").write_text(REV2, encoding="utf-8")
    spec2 = DefinitionStore(rev2).catalogue().specs["review"]
    with db.write() as s:
        row = s.get(ProcessDefinition, first_id)
        row.source_text, row.content_hash = REV2, spec2.content_hash
    with db.read() as s:
        assert "evaluate" in store.spec(s, first_id).steps and "assess" not in store.spec(s, first_id).steps
        assert store.latest(s, "review")[1].content_hash == spec2.content_hash
    assert set(store._specs) == {spec2.content_hash, other.catalogue().specs["review"].content_hash}
