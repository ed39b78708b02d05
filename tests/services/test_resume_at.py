"""Sub-process `resume_at`: the parent waiting on a child goes on as soon as the child reaches one
of the named steps, in the same transaction as the child's action, with a `subprocess_resume`
trail event; the child then carries on alone and its end no longer touches the parent
(tests/fixtures/resume/)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.services.support import act, events, instance, open_task, setup, start
from workflow_app.engine.calendar import WorkingCalendar
from workflow_app.engine.loader import load_catalogue
from workflow_app.models import ProcessInstance
from workflow_app.services import trail
from workflow_app.services.definitions import DefinitionStore
from workflow_app.services.workflow import Workflow

ROOT = Path(__file__).resolve().parents[2]
RESUME = ROOT / "tests" / "fixtures" / "resume"


@pytest.fixture
def resume_dir(tmp_path) -> Path:
    shutil.copy(ROOT / "process_defs" / "organisation.yaml", tmp_path)
    for f in RESUME.glob("*.yaml"):
        shutil.copy(f, tmp_path)
    return tmp_path


@pytest.fixture
def flow(resume_dir, clock):
    store = DefinitionStore(resume_dir)
    return store, Workflow(store, WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars"), clock)


def _child(db, parent: int) -> int:
    with db.read() as s:
        return s.scalars(select(ProcessInstance.id).where(ProcessInstance.parent_id == parent)).one()


def test_parent_resumes_when_the_child_reaches_the_step_and_the_child_goes_on(db, flow, clock):
    store, workflow = flow
    people = setup(db, store, clock)
    parent = start(db, workflow, people["submitter"], "parent_resume", {"name": "澥浦园区"})
    assert instance(db, parent).current_step == "review"
    child = _child(db, parent)
    act(db, workflow, people["econ"], child, "approve", open_task(db, child).id)
    assert instance(db, child).current_step == "follow_up"
    assert (instance(db, parent).current_step, instance(db, parent).status) == ("close", "running")
    resumed = events(db, parent)[-1]
    assert (resumed.action, resumed.from_step, resumed.to_step) == ("subprocess_resume", "review", "close")
    assert resumed.details == {"child": child, "child_step": "follow_up"}
    # the child carries on; its end does not move the parent a second time
    act(db, workflow, people["sasac"], parent, "approve", open_task(db, parent).id)
    assert instance(db, parent).status == "approved"
    act(db, workflow, people["promo1"], child, "approve", open_task(db, child).id)
    assert instance(db, child).status == "approved"
    assert [e.action for e in events(db, parent)] == ["start", "subprocess_resume", "approve"]
    with db.read() as s:
        assert trail.verify(s).ok


def test_a_child_ending_before_the_resume_step_still_decides_the_parent(db, flow, clock):
    store, workflow = flow
    people = setup(db, store, clock)
    parent = start(db, workflow, people["submitter"], "parent_resume", {"name": "澥浦园区"})
    child = _child(db, parent)
    act(db, workflow, people["econ"], child, "reject", open_task(db, child).id, opinion="不符合")
    assert instance(db, parent).status == "rejected"
    assert events(db, parent)[-1].action == "subprocess_end"


def test_loader_checks_resume_at_against_the_child(resume_dir):
    assert load_catalogue([resume_dir]).problems == []
    path = resume_dir / "parent_resume.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "resume_at: [follow_up]", "resume_at: [folow_up, approved, draft]"), encoding="utf-8")
    for target in ([resume_dir], [path]):       # the folder, or the one file beside its child
        found = load_catalogue(target).problems
        assert [(p.line, p.key) for p in found] == [(10, "steps[1].resume_at[0]"),
                                                    (10, "steps[1].resume_at[1]"),
                                                    (10, "steps[1].resume_at[2]")]
        assert "unknown step 'folow_up' of process 'child_resume'" in found[0].message
        assert "is the end step" in found[1].message and "is the start step" in found[2].message


def test_resume_at_only_on_subprocess_steps(resume_dir):
    path = resume_dir / "parent_resume.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "assign: {department: sasac, role: head}}", "assign: {department: sasac, role: head}, resume_at: [x]}"),
        encoding="utf-8")
    [problem] = load_catalogue([path]).problems
    assert (problem.line, problem.key) == (11, "steps[2]") and "only for subprocess steps" in problem.message


def test_a_child_that_reaches_the_resume_step_when_it_starts_resumes_the_parent_at_once(db, resume_dir, clock):
    """resume_at naming the child's first step: the parent goes on in the action that started the
    child (one transaction: parent moved, child started, parent moved again)."""
    path = resume_dir / "parent_resume.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("resume_at: [follow_up]", "resume_at: [check]"),
                    encoding="utf-8")
    store = DefinitionStore(resume_dir)
    workflow = Workflow(store, WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars"), clock)
    people = setup(db, store, clock)
    parent = start(db, workflow, people["submitter"], "parent_resume", {"name": "澥浦园区"})
    child = _child(db, parent)
    assert instance(db, child).current_step == "check"
    assert instance(db, parent).current_step == "close"
    assert [e.action for e in events(db, parent)] == ["start", "subprocess_resume"]
    with db.read() as s:
        assert trail.verify(s).ok
