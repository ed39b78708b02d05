"""The workflow service beyond the happy path (tests/services/test_workflow.py): the stored-form
round trip mid-flow, substitution in the trail, routing rules over real memberships,
sub-processes end to end, voiding a parent, and people named by actions that do not exist."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.services.support import (BIG, MORE_PEOPLE, act, events, instance, open_task, setup,
                                    start, tasks)
from workflow_app.engine.calendar import WorkingCalendar
from workflow_app.engine.errors import Conflict, Forbidden, InvalidAction
from workflow_app.models import CarbonCopy, ProcessInstance, Substitution, User
from workflow_app.services import trail
from workflow_app.engine.runtime import Request
from workflow_app.services.definitions import DefinitionStore
from workflow_app.services.workflow import Workflow

ROOT = Path(__file__).resolve().parents[2]

PARENT = {"name": "澥浦园区", "amount": "3000"}
ROUTING = {"name": "星寓人才公寓", "owner_group": "haijiang", "area_m2": "6000"}


def verified(db) -> bool:
    with db.read() as s:
        return trail.verify(s).ok


def test_round_trip_through_the_database_with_a_fresh_service(db, defs_dir, store, workflow, clock):
    """Half-way through a parallel group, throw the service away (a new DefinitionStore has an
    empty spec cache: the definition is re-read from the database) and finish with the new one."""
    people = setup(db, store, clock)
    iid = start(db, workflow, people["submitter"], data=BIG)
    act(db, workflow, people["promo1"], iid, "approve", open_task(db, iid).id, data={"note": "踏勘"})
    act(db, workflow, people["plan1"], iid, "approve", open_task(db, iid, assignee=people["plan1"], step="joint").id)

    fresh_store = DefinitionStore(defs_dir)
    assert fresh_store._specs == {}  # keyed by content hash
    fresh = Workflow(fresh_store, WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars"), clock)
    plan1_task = next(t for t in tasks(db, iid, "done") if t.assignee_id == people["plan1"])
    with pytest.raises(Conflict):
        act(db, fresh, people["plan1"], iid, "approve", plan1_task.id)
    act(db, fresh, people["plan2"], iid, "approve", open_task(db, iid, assignee=people["plan2"], step="joint").id)
    act(db, fresh, people["econ"], iid, "approve", open_task(db, iid, step="joint").id)
    assert instance(db, iid).current_step == "sasac" and instance(db, iid).form_data["note"] == "踏勘"
    act(db, fresh, people["sasac"], iid, "approve", open_task(db, iid).id)
    assert instance(db, iid).status == "approved"
    assert [e.action for e in events(db, iid)] == ["start", "approve", "approve", "approve", "approve", "approve"]
    assert verified(db)


def test_substitution_is_recorded_with_both_people(db, store, workflow, clock):
    people = setup(db, store, clock)
    iid = start(db, workflow, people["submitter"], data=BIG)
    task = open_task(db, iid)
    act(db, workflow, people["promo1"], iid, "claim", task.id)
    with db.write() as s:
        with pytest.raises(Forbidden, match="standing in"):
            workflow.act(s, people["promo2"], iid, Request("approve", task.id), on_behalf_of=people["promo1"])
    with db.write() as s:
        s.add(Substitution(user_id=people["promo1"], substitute_id=people["promo2"], reason="出差",
                           starts_at=clock() - timedelta(days=1), ends_at=clock() + timedelta(days=1)))
    with db.write() as s:
        workflow.act(s, people["promo2"], iid, Request("approve", task.id, opinion="代为审批"),
                     on_behalf_of=people["promo1"])
    event = events(db, iid)[-1]
    assert (event.actor_id, event.on_behalf_of_id, event.action) == (people["promo2"], people["promo1"], "approve")
    assert (event.actor_department, event.actor_role) == ("invest_promo", "reviewer")
    [done] = [t for t in tasks(db, iid, "done")]
    assert (done.assignee_id, done.acted_by_id) == (people["promo1"], people["promo2"])
    clock.now += timedelta(days=2)  # the substitution has ended
    with db.write() as s:
        with pytest.raises(Forbidden):
            workflow.act(s, people["promo2"], iid, Request("approve", open_task(db, iid, step="joint").id),
                         on_behalf_of=people["econ"])


def test_routing_rules_over_real_memberships(db, store, workflow, clock):
    """routing.yaml through the service: department_field, rule table, 回避, distinct deciders
    (read back from the task table), $submitter_group and $submitter."""
    people = setup(db, store, clock, {**MORE_PEOPLE, "dual": [("sasac", "head"), ("audit", "compliance")]})
    iid = start(db, workflow, people["xy_submit"], "routing", ROUTING, department="xingyu")
    act(db, workflow, people["hj_head"], iid, "approve", open_task(db, iid).id)
    triage = open_task(db, iid)
    assert (triage.department, triage.role) == ("sasac", "head")
    with pytest.raises(Forbidden, match="回避"):
        act(db, workflow, people["sasac_xingyu"], iid, "claim", triage.id)
    act(db, workflow, people["dual"], iid, "hold", triage.id, opinion="待审计复核")
    parked = open_task(db, iid)
    with pytest.raises(Forbidden, match="already decided step 'triage'"):
        act(db, workflow, people["dual"], iid, "approve", parked.id)
    act(db, workflow, people["audit1"], iid, "approve", parked.id)
    group = open_task(db, iid)
    assert (group.step, group.department, group.role) == ("group_decision", "zhentou", "head")
    act(db, workflow, people["zt_head"], iid, "approve", group.id)
    own = open_task(db, iid)
    assert (own.step, own.assignee_id) == ("own_confirm", people["xy_submit"])
    act(db, workflow, people["xy_submit"], iid, "approve", own.id)
    assert instance(db, iid).status == "approved" and verified(db)


def test_sub_process_runs_and_resumes_its_parent_in_the_same_transaction(db, store, workflow, clock):
    people = setup(db, store, clock)
    parent = start(db, workflow, people["submitter"], "parent", PARENT)
    result = act(db, workflow, people["promo1"], parent, "approve", open_task(db, parent).id)
    assert result.current_step == "review"
    with db.read() as s:
        child = s.scalars(select(ProcessInstance).where(ProcessInstance.parent_id == parent)).one()
    assert (child.process_key, child.current_step, child.submitter_id, child.parent_round) == \
        ("child", "check", people["submitter"], instance(db, parent).round)
    assert child.form_data == {"title": "澥浦园区", "amount_wan": "3000"}
    assert events(db, child.id)[0].details["parent"] == parent
    with pytest.raises(Conflict):
        act(db, workflow, people["submitter"], parent, "withdraw")
    act(db, workflow, people["econ"], child.id, "approve", open_task(db, child.id).id)
    assert instance(db, child.id).status == "approved"
    assert instance(db, parent).current_step == "close"
    resumed = events(db, parent)[-1]
    assert (resumed.action, resumed.details) == ("subprocess_end", {"child": child.id, "outcome": "approved"})
    act(db, workflow, people["sasac"], parent, "approve", open_task(db, parent).id)
    assert instance(db, parent).status == "approved" and verified(db)


def test_a_rejected_child_rejects_the_parent(db, store, workflow, clock):
    people = setup(db, store, clock)
    parent = start(db, workflow, people["submitter"], "parent", PARENT)
    act(db, workflow, people["promo1"], parent, "approve", open_task(db, parent).id)
    child = _child(db, parent)
    act(db, workflow, people["econ"], child, "reject", open_task(db, child).id, opinion="不符合")
    assert instance(db, parent).status == "rejected" and verified(db)


def test_voiding_a_parent_voids_its_running_child(db, store, workflow, clock):
    people = setup(db, store, clock)
    parent = start(db, workflow, people["submitter"], "parent", PARENT)
    act(db, workflow, people["promo1"], parent, "approve", open_task(db, parent).id)
    child = _child(db, parent)
    act(db, workflow, people["sysadmin"], parent, "void", opinion="重复立项")
    assert instance(db, parent).status == "void" and instance(db, child).status == "void"
    assert tasks(db, child, "open", "waiting") == []
    assert events(db, child)[-1].details == {"parent": parent, "outcome": "void", "cancelled": [
        t.id for t in tasks(db, child, "cancelled")]}
    with pytest.raises(Conflict):
        act(db, workflow, people["econ"], child, "approve", tasks(db, child)[-1].id)
    assert verified(db)


def _child(db, parent: int) -> int:
    with db.read() as s:
        return s.scalar(select(ProcessInstance.id).where(ProcessInstance.parent_id == parent))


def test_people_named_by_an_action_must_exist(db, store, workflow, clock):
    people = setup(db, store, clock)
    iid = start(db, workflow, people["submitter"], data=BIG)
    task = open_task(db, iid)
    count = instance(db, iid).trail_count
    with pytest.raises(InvalidAction, match="unknown or disabled user"):
        act(db, workflow, people["promo1"], iid, "transfer", task.id, user=999_999)
    with pytest.raises(InvalidAction, match="unknown or disabled user"):
        act(db, workflow, people["submitter"], iid, "cc", users=(people["econ"], 999_999))
    with db.write() as s:
        s.get(User, people["promo2"]).is_active = False
    with pytest.raises(InvalidAction, match="unknown or disabled user"):
        act(db, workflow, people["promo1"], iid, "add_signer", task.id, user=people["promo2"], position="after")
    assert instance(db, iid).trail_count == count
    act(db, workflow, people["submitter"], iid, "cc", users=(people["econ"], people["econ"]))
    with db.read() as s:
        assert s.scalars(select(CarbonCopy.user_id).where(CarbonCopy.instance_id == iid)).all() == [people["econ"]]
