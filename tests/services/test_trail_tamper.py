"""The hash-chained trail catches every kind of tampering done behind the application's back
(raw SQL on the database), naming the first broken event; `flask trail verify` says the same.
Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import insert, text, update

from tests.cli.runner import Cli
from tests.services.support import SMALL, act, events, open_task, setup, start
from tests.tampering import superuser
from workflow_app.engine.trail import event_hash
from workflow_app.models import ProcessInstance, TrailEvent
from workflow_app.services import trail


@pytest.fixture
def chain(db, store, workflow, clock):
    """Two applications; the second has five events: start, claim, approve, comment, approve."""
    people = setup(db, store, clock)
    first = start(db, workflow, people["submitter"], data=SMALL)
    iid = start(db, workflow, people["submitter"], data=SMALL)
    task = open_task(db, iid)
    act(db, workflow, people["promo1"], iid, "claim", task.id)
    act(db, workflow, people["promo1"], iid, "approve", task.id, opinion="同意")
    act(db, workflow, people["submitter"], iid, "comment", opinion="谢谢")
    act(db, workflow, people["sasac"], iid, "approve", open_task(db, iid).id, opinion="合规")
    evs = events(db, iid)
    assert [e.action for e in evs] == ["start", "claim", "approve", "comment", "approve"]
    return first, iid, evs


def verify(db) -> trail.VerifyResult:
    with db.read() as s:
        return trail.verify(s)


def tamper(db, sql: str, **params) -> None:
    with superuser(db) as conn:
        conn.execute(text(sql), params)


def test_untouched_chains_verify(db, chain):
    first, iid, evs = chain
    result = verify(db)
    system = len(events(db, None))
    assert system == 5                              # one definition_sync per synced file
    assert result.ok and result.checked == 1 + len(evs) + system and result.chains == 3


def test_edited_opinion(db, chain):
    _first, iid, evs = chain
    tamper(db, "UPDATE trail_event SET opinion = '不同意' WHERE id = :id", id=evs[2].id)
    result = verify(db)
    assert (result.broken.event_id, result.broken.seq, result.chain) == (evs[2].id, 3, f"instance {iid}")
    assert "edited" in result.broken.reason


def test_edited_details_json(db, chain):
    _first, _iid, evs = chain
    with superuser(db) as conn:
        conn.execute(update(TrailEvent).where(TrailEvent.id == evs[2].id)
                     .values(details={**evs[2].details, "verdict": "rejected"}))
    assert verify(db).broken.event_id == evs[2].id


def test_edited_actor_and_time(db, chain):
    _first, _iid, evs = chain
    tamper(db, "UPDATE trail_event SET actor_name = 'someone' WHERE id = :id", id=evs[1].id)
    assert verify(db).broken.event_id == evs[1].id


def test_deleted_middle_event(db, chain):
    _first, _iid, evs = chain
    tamper(db, "DELETE FROM trail_event WHERE id = :id", id=evs[2].id)
    broken = verify(db).broken
    assert (broken.event_id, broken.seq) == (evs[3].id, 4) and "sequence jumps from 2 to 4" in broken.reason


def test_deleted_last_event_is_a_head_mismatch(db, chain):
    _first, _iid, evs = chain
    tamper(db, "DELETE FROM trail_event WHERE id = :id", id=evs[-1].id)
    broken = verify(db).broken
    assert (broken.event_id, broken.seq) == (None, 5) and "removed from the end" in broken.reason


def test_every_event_deleted(db, chain):
    _first, iid, _evs = chain
    tamper(db, "DELETE FROM trail_event WHERE instance_id = :iid", iid=iid)
    result = verify(db)
    assert result.chain == f"instance {iid}" and "missing" in result.broken.reason


def test_inserted_forged_event(db, chain):
    """A forger who knows the hash format appends a well-formed event: it lies beyond the head."""
    _first, iid, evs = chain
    last = evs[-1]
    forged = {c: getattr(last, c) for c in ("instance_id", "created_at", "actor_id", "actor_name",
                                             "actor_department", "actor_role", "on_behalf_of_id",
                                             "task_id", "from_step", "to_step", "definition_id",
                                             "definition_hash", "form_hash", "details")}
    forged.update(seq=last.seq + 1, action="comment", opinion="已同意（补记）", prev_hash=last.hash)
    forged["hash"] = event_hash(last.hash, forged)
    with db.engine.begin() as conn:
        forged_id = conn.execute(insert(TrailEvent).returning(TrailEvent.id), forged).scalar_one()
    broken = verify(db).broken
    assert (broken.event_id, broken.seq) == (forged_id, 6) and "beyond the recorded head" in broken.reason


def test_inserted_event_with_a_bad_hash(db, chain):
    _first, _iid, evs = chain
    last = evs[-1]
    with db.engine.begin() as conn:
        forged_id = conn.execute(insert(TrailEvent).returning(TrailEvent.id), dict(
            instance_id=last.instance_id, seq=last.seq + 1, created_at=last.created_at,
            action="approve", actor_name="x", details={}, prev_hash=last.hash, hash="0" * 64)).scalar_one()
    assert verify(db).broken.event_id == forged_id


def test_reordered_events(db, chain):
    _first, _iid, evs = chain
    tamper(db, "UPDATE trail_event SET seq = -1 WHERE id = :id", id=evs[1].id)
    tamper(db, "UPDATE trail_event SET seq = 2 WHERE id = :id", id=evs[2].id)
    tamper(db, "UPDATE trail_event SET seq = 3 WHERE id = :id", id=evs[1].id)
    broken = verify(db).broken
    assert (broken.event_id, broken.seq) == (evs[2].id, 2) and "link" in broken.reason


def test_altered_instance_head(db, chain):
    _first, iid, evs = chain
    with db.engine.begin() as conn:
        conn.execute(update(ProcessInstance).where(ProcessInstance.id == iid).values(trail_head="f" * 64))
    broken = verify(db).broken
    assert (broken.event_id, broken.seq) == (evs[-1].id, 5) and "head" in broken.reason


def test_altered_instance_count(db, chain):
    _first, iid, evs = chain
    with db.engine.begin() as conn:
        conn.execute(update(ProcessInstance).where(ProcessInstance.id == iid).values(trail_count=4))
    assert verify(db).broken.event_id == evs[-1].id


def test_first_broken_chain_is_reported(db, chain):
    first, iid, evs = chain
    first_events = events(db, first)
    tamper(db, "UPDATE trail_event SET opinion = 'x' WHERE id = :id", id=evs[2].id)
    tamper(db, "UPDATE trail_event SET opinion = 'x' WHERE id = :id", id=first_events[0].id)
    result = verify(db)
    assert (result.chain, result.broken.event_id) == (f"instance {first}", first_events[0].id)


def test_system_chain_tampering(db, chain):
    sync_event = events(db, None)[1]
    tamper(db, "UPDATE trail_event SET definition_hash = :h WHERE id = :id", h="0" * 64, id=sync_event.id)
    result = verify(db)
    assert (result.chain, result.broken.event_id) == ("system", sync_event.id)


def test_cli_trail_verify(db, chain, database_url, defs_dir):
    _first, _iid, evs = chain
    cli = Cli(database_url, defs_dir)
    try:
        ok = cli("trail", "verify")
        assert ok.exit_code == 0, ok.output
        assert ok.stdout.splitlines() == ["OK: 11 events in 3 chains verified",
                                          "note: no trail anchor yet: run `flask trail anchor` (e.g. from cron)",
                                          "OK: security log, 0 rows verified"]
        tamper(db, "UPDATE trail_event SET opinion = '不同意' WHERE id = :id", id=evs[2].id)
        bad = cli("trail", "verify")
        assert bad.exit_code == 1
        assert f"event id {evs[2].id}, seq 3" in bad.stdout and "edited" in bad.stdout
    finally:
        cli.close()
