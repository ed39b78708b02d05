"""The workflow service end to end on a real database (SQLite, and PostgreSQL when configured)."""
from __future__ import annotations

import pytest

from tests.factories import create_people
from workflow_app.engine.errors import Conflict, Forbidden
from workflow_app.engine.runtime import Request
from workflow_app.models import ProcessInstance, Task
from workflow_app.services import trail

DATA = {"project_name": "新材料中试基地", "investment_wan": "6000", "industry": "新材料"}


@pytest.fixture
def people(db, store, clock):
    with db.write() as s:
        store.sync(s, clock())
        return create_people(s)


def open_tasks(db, instance_id):
    with db.read() as s:
        return s.query(Task).filter_by(instance_id=instance_id, status="open").order_by(Task.id).all()


def test_full_path_with_parallel_return_and_resubmit(db, workflow, people):
    with db.write() as s:
        started = workflow.start(s, people["submitter"], "review", DATA, department="zhentou")
    iid = started.instance_id
    [assess] = open_tasks(db, iid)
    assert assess.step == "assess" and assess.assignee_id is None and assess.due_at is not None
    with db.write() as s:
        workflow.act(s, people["promo1"], iid, Request("approve", assess.id))
    tasks = open_tasks(db, iid)
    assert sorted((t.step, t.branch) for t in tasks) == [("joint", "industry"), ("joint", "plan"), ("joint", "plan")]
    plan_task = next(t for t in tasks if t.assignee_id == people["plan1"])
    with db.write() as s:
        workflow.act(s, people["plan1"], iid, Request("return", plan_task.id, opinion="请补充规划图", target="draft"))
    [resubmit] = open_tasks(db, iid)
    assert resubmit.step == "draft" and resubmit.assignee_id == people["submitter"]
    with db.write() as s:
        workflow.act(s, people["submitter"], iid, Request("submit", resubmit.id, data={**DATA, "project_name": "新材料中试基地(修改)"}))
    with db.read() as s:
        inst = s.get(ProcessInstance, iid)
        assert inst.form_data["project_name"].endswith("(修改)") and inst.current_step == "assess"
    [assess2] = open_tasks(db, iid)
    with db.write() as s:
        workflow.act(s, people["promo2"], iid, Request("approve", assess2.id))
    for t in open_tasks(db, iid):
        who = {"industry": "econ"}.get(t.branch) or next(n for n in ("plan1", "plan2") if people[n] == t.assignee_id)
        with db.write() as s:
            workflow.act(s, people[who], iid, Request("approve", t.id))
    [final] = open_tasks(db, iid)
    assert final.step == "sasac"
    with db.write() as s:
        with pytest.raises(Forbidden):
            workflow.act(s, people["submitter"], iid, Request("approve", final.id))
    with db.write() as s:
        result = workflow.act(s, people["sasac"], iid, Request("approve", final.id, opinion="同意"))
    assert result.status == "approved"
    with db.read() as s:
        verdict = trail.verify(s)
        inst = s.get(ProcessInstance, iid)
    assert verdict.ok and inst.trail_count == 9  # one event per action; the refused one wrote nothing


def test_second_decision_on_same_task_conflicts_and_writes_nothing(db, workflow, people):
    with db.write() as s:
        iid = workflow.start(s, people["submitter"], "review", DATA, department="zhentou").instance_id
    [task] = open_tasks(db, iid)
    with db.write() as s:
        workflow.act(s, people["promo1"], iid, Request("approve", task.id))
    with db.read() as s:
        before = s.get(ProcessInstance, iid).trail_count
    with pytest.raises(Conflict):
        with db.write() as s:
            workflow.act(s, people["promo2"], iid, Request("reject", task.id, opinion="不同意"))
    with db.read() as s:
        assert s.get(ProcessInstance, iid).trail_count == before
