"""Who is asked and who may decide: department_field and rule-table routing, `$submitter` /
`$submitter_group`, self-approval, 回避 recusal, distinct deciders, substitution, custom actions
and sub-processes (tests/fixtures/routing.yaml, parent.yaml, child.yaml; people in harness.py).

routing.yaml: draft -> owner_check ({department_field: owner_group, role: head}) -> triage (rule:
area_m2 >= 5000 -> sasac head, else invest_promo reviewer; custom `hold` -> parked, audit queue)
-> group_decision ($submitter_group head) -> own_confirm ($submitter) -> approved. Rules:
withdraw off, distinct_deciders, recusal: submitter_group.
"""
from __future__ import annotations

import pytest

from tests.engine.directory import MemoryDirectory
from tests.engine.harness import NOW, PEOPLE, Run, spec
from workflow_app.engine.errors import Conflict, Forbidden, InvalidAction
from workflow_app.engine.routing import route
from workflow_app.engine.runtime import Runtime
from workflow_app.engine.schema import Mode
from workflow_app.engine.spec import AssignSpec
from workflow_app.engine.state import Actor, InstanceStatus, Origin, TaskStatus

XINGYU = {"name": "星寓人才公寓", "owner_group": "haijiang", "area_m2": "6000"}


def routing(data=None, submitter=11, department="xingyu") -> Run:
    return Run("routing", {**XINGYU, **(data or {})}, submitter=submitter, department=department)


def to_triage(run: Run) -> Run:
    run.decide(22)
    assert run.step == "triage"
    return run


# ------------------------------------------------------------------ routing
def test_department_field_routes_to_the_named_department():
    run = routing()
    [task] = run.open()
    assert (task.department, task.role, task.origin) == ("haijiang", "head", Origin.queue)
    run2 = routing({"owner_group": "zhentou"}, submitter=9, department="haijiang")
    with pytest.raises(Forbidden):
        run2.act(22, "approve", run2.open()[0])
    assert run2.open()[0].department == "zhentou"
    with pytest.raises(InvalidAction, match="no eligible member of zhentou/head"):
        routing({"owner_group": "zhentou"})      # 回避: 星寓's own group may not check it


def test_department_field_naming_nobody_refuses_with_the_reason():
    with pytest.raises(InvalidAction, match="no eligible member of audit/head"):
        routing({"owner_group": "audit"})


@pytest.mark.parametrize(("area", "department", "role"), [
    ("6000", "sasac", "head"), ("5000", "sasac", "head"), ("4999", "invest_promo", "reviewer")])
def test_rule_table_first_matching_row(area, department, role):
    run = to_triage(routing({"area_m2": area}))
    [task] = run.open()
    assert (task.department, task.role) == (department, role)


def test_rule_table_condition_on_a_missing_value_refuses_the_action_clearly():
    run = routing({"area_m2": None})
    with pytest.raises(InvalidAction, match=r"no value for area_m2"):
        run.decide(22)
    assert run.step == "owner_check"


def test_submitter_group_step_goes_to_the_group_not_recused():
    run = to_triage(routing())
    run.decide(7)
    assert run.step == "group_decision"
    [task] = run.open()
    assert (task.department, task.role) == ("zhentou", "head")  # 星寓's group
    run.decide(21)                                                # its own act: no 回避
    assert run.step == "own_confirm"


def test_submitter_step_asks_exactly_the_submitter_who_may_act():
    run = to_triage(routing())
    run.decide(7)
    run.decide(21)
    [task] = run.open()
    assert (task.assignee, task.origin) == (11, Origin.route)
    run.act(11, "approve", task)
    assert run.status is InstanceStatus.approved


def test_route_excludes_the_submitter_and_recused_members():
    directory = MemoryDirectory(PEOPLE)
    common = dict(step="s", branch=None, mode=Mode.all, quorum=None, deadline_days=None, round_=2,
                  data={}, directory=directory)
    assign = AssignSpec(department="sasac", department_field=None, role="head")
    with_recusal = route(assign=assign, submitter=11, submitter_department="xingyu", recusal=True, **common)
    assert [t.assignee for t in with_recusal] == [7, 30]          # 8 works for 星寓
    without = route(assign=assign, submitter=11, submitter_department="xingyu", recusal=False, **common)
    assert [t.assignee for t in without] == [7, 8, 30]
    people = {**PEOPLE, 12: PEOPLE[12] + [("sasac", "head")]}
    mine = route(assign=assign, submitter=12, submitter_department="zhentou", recusal=False,
                 **{**common, "directory": MemoryDirectory(people)})
    assert 12 not in [t.assignee for t in mine]


# ------------------------------------------------------------------ self-approval
def test_a_submitter_never_approves_their_own_application():
    run = Run("review", {"project_name": "x", "investment_wan": "100", "industry": "新材料"},
              submitter=12)
    [task] = run.open()
    for action in ("approve", "claim", "transfer"):
        with pytest.raises(Forbidden, match="own application"):
            run.act(12, action, task, user=3)
    run.decide(2)
    assert run.step == "sasac"


# ------------------------------------------------------------------ 回避 recusal
def test_recusal_refuses_a_reviewer_from_the_submitting_group():
    run = to_triage(routing())
    task = run.open()[0]
    with pytest.raises(Forbidden, match="回避"):
        run.act(8, "claim", task)
    with pytest.raises(Forbidden, match="回避"):
        run.act(8, "approve", task)
    with pytest.raises(InvalidAction, match="回避"):
        run.act(7, "transfer", task, user=8)
    with pytest.raises(InvalidAction, match="回避"):
        run.act(7, "add_signer", task, user=8, position="after")
    run.decide(7)


def test_recusal_covers_the_whole_group_tree():
    run = to_triage(routing(submitter=1, department="zhentou"))  # group submitter, subsidiary reviewer
    with pytest.raises(Forbidden, match="回避"):
        run.act(8, "approve", run.open()[0])


def test_recusal_does_not_touch_other_groups():
    run = routing(submitter=9, department="haijiang", data={"owner_group": "zhentou"})
    run.decide(21)
    run.decide(8)                                  # 星寓 is not in 海江's group
    assert run.step == "group_decision" and run.open()[0].department == "haijiang"
    run.decide(22)                                 # 海江's own step, its own head


# ------------------------------------------------------------------ distinct deciders
def test_one_person_decides_only_one_step():
    run = to_triage(routing(submitter=1, department="zhentou"))
    run.decide(30, "hold", opinion="待审计复核")
    assert run.step == "parked"
    task = run.open()[0]
    with pytest.raises(Forbidden, match="already decided step 'triage'"):
        run.act(30, "approve", task)
    with pytest.raises(InvalidAction, match="already decided"):
        run.act(31, "transfer", task, user=30)   # nor can the task be handed to them
    run.decide(31)
    assert run.step == "group_decision"


def test_the_same_step_again_in_a_later_round_is_allowed():
    run = to_triage(routing())
    run.act(7, "return", run.open()[0], target="owner_check", opinion="请业主补充")
    run.decide(22)                                # decided owner_check before: same step is fine
    assert run.step == "triage"
    run.reload()                                  # what counts survives the stored form
    assert run.inst.decided_steps == {22: frozenset({"owner_check"})}  # returning decides nothing
    run.decide(7)
    assert run.step == "group_decision"


# ------------------------------------------------------------------ substitution
def test_a_stand_in_acts_for_an_absent_assignee():
    run = Run("review", {"project_name": "x", "investment_wan": "100", "industry": "新材料"})
    task = run.task_of(2)
    run.act(2, "claim", task)
    with pytest.raises(Forbidden):
        run.act(3, "approve", task)              # not without standing in
    effect = run.act(3, "approve", task, on_behalf_of=2, opinion="代为审批")
    assert (task.assignee, task.acted_by) == (2, 3) and effect.trail.action == "approve"
    assert run.step == "sasac"


def test_a_stand_in_may_not_do_what_either_person_could_not():
    run = Run("review", {"project_name": "x", "investment_wan": "100", "industry": "新材料"})
    task = run.task_of(2)
    run.act(2, "claim", task)
    with pytest.raises(Forbidden, match="own application"):
        run.act(1, "approve", task, on_behalf_of=2)  # the submitter standing in
    run = to_triage(routing())
    queue = run.open()[0]
    with pytest.raises(Forbidden, match="回避"):
        run.act(8, "approve", queue, on_behalf_of=7)  # a recused stand-in


# ------------------------------------------------------------------ custom actions
def test_custom_action_decides_the_step_at_once_with_its_opinion_rule():
    run = to_triage(routing())
    task = run.open()[0]
    with pytest.raises(InvalidAction, match="opinion"):
        run.act(7, "hold", task)
    effect = run.act(7, "hold", task, opinion="待审计")
    assert effect.trail.action == "hold" and run.step == "parked"
    assert run.open()[0].department == "audit"


def test_custom_action_only_where_the_definition_has_it():
    run = routing()
    with pytest.raises(InvalidAction, match="not possible at step 'owner_check'"):
        run.act(22, "hold", run.open()[0], opinion="x")


# ------------------------------------------------------------------ sub-processes
def test_sub_process_start_and_the_parent_resuming_on_its_outcome():
    parent = Run("parent", {"name": "园区项目", "amount": "3000"})
    effect = parent.decide(2)
    assert parent.step == "review" and not parent.open()
    assert (effect.start_child.process, effect.start_child.data) == ("child", {"title": "园区项目", "amount_wan": "3000"})
    with pytest.raises(InvalidAction, match="nobody is waiting"):
        parent.act(1, "urge")
    with pytest.raises(Conflict, match="sub-process"):
        parent.act(1, "withdraw")
    runtime = Runtime(parent.directory)
    submitter = Actor(user_id=1, name="parent", system=True, memberships=frozenset({("zhentou", "submitter")}))
    child, _ = runtime.start(spec("child"), effect.start_child.data, submitter, "zhentou", NOW)
    assert child.current_step == "check" and child.data == {"title": "园区项目", "amount_wan": "3000"}
    resumed = runtime.child_finished(parent.inst, InstanceStatus.approved, 77, NOW)
    assert parent.step == "close" and resumed.trail.details == {"child": 77, "outcome": "approved"}
    with pytest.raises(Conflict):
        runtime.child_finished(parent.inst, InstanceStatus.approved, 77, NOW)


@pytest.mark.parametrize("outcome", [InstanceStatus.rejected, InstanceStatus.withdrawn, InstanceStatus.void])
def test_a_child_that_does_not_approve_takes_the_reject_path(outcome):
    parent = Run("parent", {"name": "园区项目", "amount": "3000"})
    parent.decide(2)
    parent.runtime.child_finished(parent.inst, outcome, 5, NOW)
    assert parent.status is InstanceStatus.rejected


def test_parent_voided_voids_the_child():
    child = Run("child", {"title": "x", "amount_wan": "1"})
    effect = child.runtime.parent_voided(child.inst, 42, NOW)
    assert child.status is InstanceStatus.void and effect.trail.details["parent"] == 42
    assert all(t.status is TaskStatus.cancelled for t in child.inst.tasks + [child.history[1]])
