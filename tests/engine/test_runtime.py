"""Every action of the pure runtime on the `review` fixture (tests/fixtures/review.yaml):

draft -> assess (invest_promo queue) -> [decision table] joint (parallel: econ_it queue + dev_reform
会签) or sasac (queue) -> approved; reject anywhere -> rejected. See harness.PEOPLE for who is who.
Approval modes, 会签 and parallel groups: test_runtime_modes.py; routing and separation of duties:
test_runtime_routing.py.
"""
from __future__ import annotations

import pytest

from tests.engine.harness import NOW, Run, spec
from workflow_app.engine.effects import MAX_OPINION, Request
from workflow_app.engine.errors import Conflict, Forbidden, InvalidAction
from workflow_app.engine.runtime import Runtime
from workflow_app.engine.state import InstanceStatus, Origin, TaskStatus

BIG = {"project_name": "新材料中试基地", "investment_wan": "6000", "industry": "新材料"}
SMALL = {"project_name": "园区配套", "investment_wan": "800", "industry": "智能制造"}


def at_sasac() -> Run:
    run = Run("review", SMALL)
    run.decide(2)
    assert run.step == "sasac"
    return run


def at_joint() -> Run:
    run = Run("review", BIG)
    run.decide(2)
    assert run.step == "joint"
    return run


# ------------------------------------------------------------------ start and submit
def test_start_opens_a_department_queue_task_with_its_deadline():
    run = Run("review", BIG)
    [task] = run.open()
    assert (run.step, run.status, run.inst.round) == ("assess", InstanceStatus.running, 2)
    assert (task.department, task.role, task.origin, task.assignee) == ("invest_promo", "reviewer", Origin.queue, None)
    assert task.deadline_days == 5
    trail = run.effects[0].trail
    assert (trail.action, trail.from_step, trail.to_step) == ("start", None, "assess")
    assert trail.details["fields"] == ["industry", "investment_wan", "project_name"]


def test_only_a_submitter_of_the_department_may_start():
    runtime = Runtime(Run("review", BIG).directory)
    with pytest.raises(Forbidden):
        runtime.start(spec("review"), BIG, Run("review", BIG).actor(2), "zhentou", NOW)
    with pytest.raises(Forbidden):  # 9 submits for haijiang, not zhentou
        runtime.start(spec("review"), BIG, Run("review", BIG).actor(9), "zhentou", NOW)


def test_start_refuses_bad_forms_listing_every_field():
    with pytest.raises(InvalidAction) as exc:
        Run("review", {"investment_wan": "-1", "industry": "钢铁"})
    assert set(exc.value.details["fields"]) == {"project_name", "investment_wan", "industry"}


# ------------------------------------------------------------------ approve, reject, decision table
@pytest.mark.parametrize(("amount", "industry", "dest"), [
    ("6000", "新材料", "joint"), ("5000", "集成电路", "joint"), ("4999.99", "新材料", "sasac"),
    ("9000", "智能制造", "sasac"),  # first matching row wins; the default row catches the rest
])
def test_decision_table_first_match_wins(amount, industry, dest):
    run = Run("review", {**BIG, "investment_wan": amount, "industry": industry})
    run.decide(2)
    assert run.step == dest


def test_queue_task_is_decided_without_claiming_and_records_who():
    run = Run("review", SMALL)
    task = run.task_of(3)
    effect = run.decide(3, opinion="同意")
    assert (task.status, task.decision, task.assignee, task.acted_by, task.opinion) == \
        (TaskStatus.done, "approve", 3, 3, "同意")
    assert (effect.trail.action, effect.trail.from_step, effect.trail.to_step) == ("approve", "assess", "sasac")
    assert effect.moved and not effect.ended


def test_reject_needs_an_opinion_and_ends_the_instance():
    run = at_sasac()
    with pytest.raises(InvalidAction, match="opinion"):
        run.decide(7, "reject")
    effect = run.decide(7, "reject", opinion="不符合产业导向")
    assert run.status is InstanceStatus.rejected and effect.ended
    assert effect.trail.details["outcome"] == "rejected" and not run.open()
    with pytest.raises(Conflict):
        run.act(7, "approve", run.history[max(run.history)])


def test_approve_to_the_end():
    run = at_sasac()
    effect = run.decide(7)
    assert run.status is InstanceStatus.approved and effect.ended and effect.trail.to_step == "approved"


def test_field_edits_only_where_the_definition_allows():
    run = Run("review", BIG)
    task = run.task_of(2)
    with pytest.raises(InvalidAction, match="cannot be changed"):
        run.act(2, "approve", task, data={"project_name": "改名"})
    effect = run.act(2, "approve", task, data={"note": "已现场踏勘"})
    assert run.inst.data["note"] == "已现场踏勘" and effect.data_changed
    assert effect.trail.details["edited"] == ["note"]


def test_unknown_action_and_bad_requests():
    run = Run("review", BIG)
    task = run.task_of(2)
    with pytest.raises(InvalidAction, match="unknown action"):
        run.act(2, "explode", task)
    with pytest.raises(InvalidAction):
        run.act(2, "approve", None)
    with pytest.raises(InvalidAction, match="longer than"):
        run.act(2, "approve", task, opinion="意" * (MAX_OPINION + 1))
    with pytest.raises(InvalidAction):  # submit is the submitter's step only
        run.act(2, "submit", task)
    with pytest.raises(InvalidAction):  # a custom trigger of another process
        run.act(2, "hold", task)


def test_a_task_of_an_earlier_round_is_a_conflict():
    run = Run("review", BIG)
    old = run.task_of(2)
    run.decide(2)
    with pytest.raises(Conflict, match="no longer current"):
        run.act(3, "approve", old)


# ------------------------------------------------------------------ 退回 return
def test_return_to_start_keeps_opinions_and_the_submitter_resubmits_with_edits():
    run = Run("review", BIG)
    task = run.task_of(2)
    with pytest.raises(InvalidAction, match="opinion"):
        run.act(2, "return", task, target="draft")
    effect = run.act(2, "return", task, target="draft", opinion="请补充可研报告")
    assert run.step == "draft" and effect.trail.details["target"] == "draft"
    [resubmit] = run.open()
    assert (resubmit.origin, resubmit.assignee, resubmit.role) == (Origin.start, 1, "submitter")
    assert (task.decision, task.opinion) == ("return", "请补充可研报告")  # kept on the old task
    with pytest.raises(Forbidden):
        run.act(2, "submit", resubmit)
    with pytest.raises(InvalidAction, match="resubmitted"):
        run.act(1, "approve", resubmit)
    with pytest.raises(InvalidAction):  # required fields must stay filled
        run.act(1, "submit", resubmit, data={"project_name": ""})
    effect = run.act(1, "submit", resubmit, data={"project_name": "新材料中试基地（补充）"})
    assert run.step == "assess" and run.inst.data["project_name"].endswith("（补充）")
    assert effect.trail.details["edited"] == ["project_name"]


def test_return_to_a_middle_step_reroutes_it():
    run = at_joint()
    plan = run.task_of(5)
    round_before = run.inst.round
    effect = run.act(5, "return", plan, target="assess", opinion="评估结论不充分")
    assert run.step == "assess" and run.inst.round == round_before + 1
    assert len(effect.trail.details["cancelled"]) == 2  # econ_it's task and the other plan signer
    [again] = run.open()
    assert (again.step, again.origin) == ("assess", Origin.queue)


def test_return_only_to_listed_earlier_steps():
    run = at_sasac()
    task = run.task_of(7)
    with pytest.raises(InvalidAction, match="allowed: draft"):
        run.act(7, "return", task, target="assess", opinion="x")
    run2 = Run("review", BIG)
    with pytest.raises(InvalidAction, match="allowed: draft"):
        run2.act(2, "return", run2.task_of(2), target="joint", opinion="x")


# ------------------------------------------------------------------ 撤回 withdraw
def test_withdraw_before_anyone_acted_even_after_a_claim():
    run = Run("review", BIG)
    run.act(2, "claim", run.task_of(2))
    effect = run.act(1, "withdraw", opinion="项目暂缓")
    assert run.status is InstanceStatus.withdrawn and effect.ended and not run.open()
    assert effect.trail.details["outcome"] == "withdrawn" and len(effect.trail.details["cancelled"]) == 1


def test_withdraw_refused_for_anyone_but_the_submitter():
    run = Run("review", BIG)
    with pytest.raises(Forbidden):
        run.act(2, "withdraw")
    with pytest.raises(Forbidden):
        run.act(99, "withdraw")


def test_withdraw_is_per_step_round():
    run = Run("review", BIG)
    run.decide(2)  # assess decided: a new step, a new round, nobody has acted in it yet
    run.act(1, "withdraw")
    assert run.status is InstanceStatus.withdrawn


def test_withdraw_after_returned_to_the_submitter():
    run = Run("review", BIG)
    run.act(2, "return", run.task_of(2), target="draft", opinion="补充")
    run.act(1, "withdraw")
    assert run.status is InstanceStatus.withdrawn


def test_withdraw_can_be_switched_off():
    run = Run("routing", {"name": "x", "owner_group": "haijiang"})
    with pytest.raises(Forbidden, match="does not allow"):
        run.act(1, "withdraw")


# ------------------------------------------------------------------ 作废 void
def test_void_by_the_system_administrator_with_a_reason():
    run = at_joint()
    with pytest.raises(Forbidden):
        run.act(1, "void", opinion="重复申报")
    with pytest.raises(InvalidAction, match="reason"):
        run.act(99, "void")
    effect = run.act(99, "void", opinion="重复申报")
    assert run.status is InstanceStatus.void and not [t for t in run.inst.tasks if t.active]
    assert len(effect.trail.details["cancelled"]) == 3
    with pytest.raises(Conflict, match="closed"):
        run.act(99, "void", opinion="again")


# ------------------------------------------------------------------ 转办 transfer
def test_transfer_moves_the_task_for_good():
    run = at_sasac()
    task = run.task_of(7)
    effect = run.act(7, "transfer", task, user=8, opinion="请王主任办理")
    assert (task.assignee, task.origin) == (8, Origin.route)
    assert effect.trail.details == {"from": 7, "to": 8} and effect.notify == [task]
    with pytest.raises(Forbidden):
        run.act(7, "approve", task)
    with pytest.raises(Forbidden):  # no longer a queue task: nothing to release
        run.act(8, "release", task)
    run.act(8, "approve", task)
    assert run.status is InstanceStatus.approved


def test_transfer_refuses_self_submitter_and_strangers_to_the_task():
    run = at_sasac()
    task = run.task_of(7)
    with pytest.raises(InvalidAction, match="already yours"):
        run.act(7, "transfer", task, user=7)
    with pytest.raises(InvalidAction, match="submitter"):
        run.act(7, "transfer", task, user=1)
    with pytest.raises(InvalidAction, match="choose a person"):
        run.act(7, "transfer", task)
    with pytest.raises(Forbidden):  # only someone who may decide the task hands it on
        run.act(4, "transfer", task, user=8)


# ------------------------------------------------------------------ 委派 delegate
def test_delegate_asks_an_opinion_and_the_owner_decides():
    run = Run("review", SMALL)
    task = run.task_of(2)
    effect = run.act(2, "delegate", task, user=5, opinion="请发改局提意见")
    assert (task.assignee, task.delegate) == (2, 5) and effect.trail.details == {"to": 5}
    with pytest.raises(Forbidden, match="delegated"):
        run.act(2, "approve", task)          # the owner waits for the opinion
    with pytest.raises(Forbidden):
        run.act(5, "approve", task)          # the delegate cannot decide
    with pytest.raises(Forbidden, match="not delegated to you"):
        run.act(3, "resolve", task, opinion="x")
    with pytest.raises(InvalidAction, match="opinion"):
        run.act(5, "resolve", task)
    effect = run.act(5, "resolve", task, opinion="符合规划")
    assert task.delegate is None and effect.trail.details == {"owner": 2} and effect.trail.opinion == "符合规划"
    with pytest.raises(Forbidden):
        run.act(5, "approve", task)
    run.act(2, "approve", task)
    assert run.step == "sasac"


def test_delegate_refuses_self_and_submitter():
    run = Run("review", SMALL)
    task = run.task_of(2)
    with pytest.raises(InvalidAction, match="yourself"):
        run.act(2, "delegate", task, user=2)
    with pytest.raises(InvalidAction, match="submitter"):
        run.act(2, "delegate", task, user=1)


# ------------------------------------------------------------------ 加签 / 减签
def test_add_signer_before_decides_first_then_the_task_comes_back():
    run = at_sasac()
    mine = run.task_of(7)
    effect = run.act(7, "add_signer", mine, user=4, position="before", opinion="请经信局先签")
    [added] = effect.added
    assert (mine.status, added.status, added.origin, added.added_by) == \
        (TaskStatus.waiting, TaskStatus.open, Origin.added, 7)
    with pytest.raises(Conflict, match="waiting"):
        run.act(7, "approve", mine)
    run.act(4, "approve", added)
    assert run.step == "sasac" and mine.status is TaskStatus.open
    run.act(7, "approve", mine)
    assert run.status is InstanceStatus.approved


def test_add_signer_after_decides_after_the_current_signer():
    run = at_sasac()
    mine = run.task_of(7)
    [added] = run.act(7, "add_signer", mine, user=4, position="after").added
    assert added.status is TaskStatus.waiting
    effect = run.act(7, "approve", mine)
    assert run.step == "sasac" and added.status is TaskStatus.open and added in effect.notify
    run.act(4, "approve", added)
    assert run.status is InstanceStatus.approved


def test_add_signer_alongside_must_also_approve_and_may_reject():
    run = at_sasac()
    mine = run.task_of(7)
    [added] = run.act(7, "add_signer", mine, user=4, position="alongside").added
    assert added.status is TaskStatus.open
    run.act(7, "approve", mine)
    assert run.step == "sasac"
    run.act(4, "reject", added, opinion="用地指标不足")
    assert run.status is InstanceStatus.rejected


def test_add_signer_refusals():
    run = at_sasac()
    mine = run.task_of(7)
    with pytest.raises(InvalidAction, match="before, after or alongside"):
        run.act(7, "add_signer", mine, user=4, position="later")
    with pytest.raises(InvalidAction, match="yourself"):
        run.act(7, "add_signer", mine, user=7, position="after")
    with pytest.raises(InvalidAction, match="submitter"):
        run.act(7, "add_signer", mine, user=1, position="after")
    run.act(7, "add_signer", mine, user=4, position="alongside")
    with pytest.raises(InvalidAction, match="already has a task"):
        run.act(7, "add_signer", mine, user=4, position="after")


def test_remove_signer_by_whoever_added_them():
    run = at_sasac()
    mine = run.task_of(7)
    [added] = run.act(7, "add_signer", mine, user=4, position="before").added
    with pytest.raises(Forbidden):
        run.act(8, "remove_signer", added)
    with pytest.raises(InvalidAction, match="only signers added"):
        run.act(7, "remove_signer", mine)
    effect = run.act(7, "remove_signer", added, opinion="无需会签")
    assert added.status is TaskStatus.cancelled and mine.status is TaskStatus.open
    assert effect.trail.details["user"] == 4 and mine in effect.changed
    with pytest.raises(Conflict):
        run.act(7, "remove_signer", added)
    run.act(7, "approve", mine)
    assert run.status is InstanceStatus.approved


def test_removing_the_last_awaited_signer_completes_the_step():
    run = at_sasac()
    mine = run.task_of(7)
    [added] = run.act(7, "add_signer", mine, user=4, position="after").added
    run.act(7, "approve", mine)
    run.act(7, "remove_signer", added)
    assert run.status is InstanceStatus.approved


# ------------------------------------------------------------------ 认领 claim / 释放 release
def test_claim_and_release_a_queue_task():
    run = Run("review", BIG)
    task = run.task_of(2)
    with pytest.raises(Forbidden):
        run.act(40, "claim", task)              # not a reviewer of invest_promo
    run.act(2, "claim", task)
    assert task.assignee == 2
    with pytest.raises(Conflict, match="claimed"):
        run.act(3, "claim", task)
    with pytest.raises(Forbidden, match="someone else"):
        run.act(3, "approve", task)
    with pytest.raises(Forbidden):
        run.act(3, "release", task)
    run.act(2, "release", task)
    assert task.assignee is None
    run.act(3, "claim", task)
    run.act(3, "approve", task)
    assert run.step == "joint"


def test_claim_is_for_queue_tasks_only():
    run = at_joint()
    with pytest.raises(InvalidAction, match="queue"):
        run.act(5, "claim", run.task_of(5))


# ------------------------------------------------------------------ comment, 抄送, 催办
def test_comment_cc_and_urge_change_no_state():
    run = Run("review", BIG)
    before = [(t.id, t.status, t.assignee) for t in run.inst.tasks], run.step, run.inst.round
    with pytest.raises(InvalidAction):
        run.act(1, "comment")
    effect = run.act(1, "comment", opinion="已补充附件")
    assert effect.trail.action == "comment" and not effect.moved and not effect.changed
    with pytest.raises(InvalidAction):
        run.act(1, "cc", users=(1,))  # copying yourself only is copying nobody
    effect = run.act(1, "cc", users=(21, 22, 21, 1))
    assert effect.cc == (21, 22) and effect.trail.details == {"users": [21, 22]}
    effect = run.act(1, "urge", opinion="请尽快办理")
    assert [t.step for t in effect.notify] == ["assess"]
    assert effect.trail.details == {"tasks": [t.id for t in run.open()]}
    assert ([(t.id, t.status, t.assignee) for t in run.inst.tasks], run.step, run.inst.round) == before


# ------------------------------------------------------------------ round trip
def test_round_trip_through_the_stored_form_mid_flow():
    """Half-way through a parallel group, rebuild the instance from its stored form (definition
    re-read from its text, tasks from rows) and carry on."""
    run = at_joint()
    run.decide(5, opinion="符合规划")
    run.reload()
    assert run.step == "joint" and sorted(t.status.value for t in run.inst.tasks) == ["done", "open", "open"]
    with pytest.raises(Conflict):
        run.act(5, "approve", next(t for t in run.inst.tasks if t.acted_by == 5))
    run.decide(6)
    run.reload()
    run.decide(4)
    assert run.step == "sasac"
    run.reload()
    run.decide(7)
    assert run.status is InstanceStatus.approved


def test_one_trail_entry_per_action_and_none_for_refusals():
    run = at_joint()
    count = len(run.effects)
    with pytest.raises(Forbidden):
        run.act(1, "approve", run.task_of(4))
    assert len(run.effects) == count
    run.decide(4)
    assert len(run.effects) == count + 1 and run.effects[-1].trail.details["verdict"] == "pending"


def test_runtime_request_is_plain_data():
    assert Request("approve", 1) == Request("approve", 1)
