"""Approval modes (tests/fixtures/modes.yaml: one step per mode, the audit committee 30/31/32)
and the semantics of return and withdraw inside 会签 and inside a parallel group (review.yaml's
`joint`: econ_it queue branch + dev_reform 会签 branch), as docs/process-definitions.md §7 states.
"""
from __future__ import annotations

import pytest

from tests.engine.harness import PEOPLE, Run
from workflow_app.engine.approval import Verdict, evaluate_group
from workflow_app.engine.errors import Conflict, InvalidAction
from workflow_app.engine.schema import Mode
from workflow_app.engine.state import InstanceStatus, Origin, TaskState, TaskStatus

COMMITTEE = (30, 31, 32)
BIG = {"project_name": "新材料中试基地", "investment_wan": "6000", "industry": "新材料"}


def run_mode(mode: str, **kw) -> Run:
    run = Run("modes", {"name": f"{mode} case", "mode": mode}, **kw)
    assert run.step == {"sequential": "seq_step"}.get(mode, f"{mode}_step")
    return run


def statuses(run: Run) -> dict[int, str]:
    """Task status by assignee in the newest round that had tasks (the current one, or the one
    that just ended the instance)."""
    newest = max(t.round for t in run.history.values())
    return {t.assignee: t.status.value for t in run.history.values() if t.round == newest}


# ------------------------------------------------------------------ single (queue)
def test_single_opens_one_queue_task_for_the_role():
    run = run_mode("single")
    [task] = run.open()
    assert (task.origin, task.assignee, task.department) == (Origin.queue, None, "invest_promo")
    run.decide(3)
    assert run.status is InstanceStatus.approved


# ------------------------------------------------------------------ 或签 any
def test_any_first_approval_decides_and_cancels_the_others():
    run = run_mode("any")
    assert statuses(run) == {30: "open", 31: "open", 32: "open"}
    effect = run.decide(31)
    assert run.status is InstanceStatus.approved
    assert statuses(run) == {30: "cancelled", 31: "done", 32: "cancelled"}
    assert len(effect.trail.details["cancelled"]) == 2 and effect.trail.details["verdict"] == "approved"


def test_any_first_rejection_decides_too():
    run = run_mode("any")
    run.decide(32, "reject", opinion="不同意")
    assert run.status is InstanceStatus.rejected


# ------------------------------------------------------------------ 会签 all
def test_all_needs_every_member():
    run = run_mode("all")
    run.decide(30)
    run.decide(32)
    assert run.step == "all_step" and statuses(run) == {30: "done", 31: "open", 32: "done"}
    run.decide(31)
    assert run.status is InstanceStatus.approved


def test_all_one_rejection_rejects_and_cancels_the_rest():
    run = run_mode("all")
    run.decide(30)
    effect = run.decide(31, "reject", opinion="安全评价缺失")
    assert run.status is InstanceStatus.rejected and statuses(run)[32] == "cancelled"
    assert effect.trail.details["verdict"] == "rejected"


# ------------------------------------------------------------------ 依次 sequential
def test_sequential_opens_one_at_a_time_in_rank_order():
    run = run_mode("sequential")
    assert statuses(run) == {30: "open", 31: "waiting", 32: "waiting"}
    waiting = next(t for t in run.inst.tasks if t.assignee == 31)
    with pytest.raises(Conflict, match="waiting"):
        run.act(31, "approve", waiting)
    effect = run.decide(30)
    assert statuses(run) == {30: "done", 31: "open", 32: "waiting"} and effect.notify == [waiting]
    run.decide(31)
    run.decide(32)
    assert run.status is InstanceStatus.approved


def test_sequential_rejection_stops_the_line():
    run = run_mode("sequential")
    run.decide(30)
    run.decide(31, "reject", opinion="否")
    assert run.status is InstanceStatus.rejected and statuses(run)[32] == "cancelled"


# ------------------------------------------------------------------ quorum n of m
def test_quorum_is_approved_at_n_approvals():
    run = run_mode("quorum")
    run.decide(30)
    assert run.step == "quorum_step"
    run.decide(32)
    assert run.status is InstanceStatus.approved and statuses(run)[31] == "cancelled"


def test_quorum_is_rejected_as_soon_as_n_is_out_of_reach():
    run = run_mode("quorum")
    run.decide(30, "reject", opinion="否")
    assert run.step == "quorum_step"          # 31 and 32 can still make two
    run.decide(31, "reject", opinion="否")
    assert run.status is InstanceStatus.rejected and statuses(run)[32] == "cancelled"


def test_quorum_mixed_votes():
    run = run_mode("quorum")
    run.decide(30, "reject", opinion="否")
    run.decide(31)
    assert run.step == "quorum_step"
    run.decide(32)
    assert run.status is InstanceStatus.approved


def test_quorum_larger_than_the_committee_cannot_start():
    people = {u: ms for u, ms in PEOPLE.items() if u not in (31, 32)}
    with pytest.raises(InvalidAction, match="needs 2 approvals"):
        run_mode("quorum", people=people)


@pytest.mark.parametrize(("mode", "decisions", "verdict"), [
    (Mode.single, ["approve"], Verdict.approved),
    (Mode.any, ["reject"], Verdict.rejected),
    (Mode.all, ["approve", "approve", None], Verdict.pending),
    (Mode.all, ["approve", "approve", "approve"], Verdict.approved),
    (Mode.sequential, ["approve", None, None], Verdict.pending),
    (Mode.quorum, ["approve", "reject", None], Verdict.pending),
    (Mode.quorum, ["reject", "reject", None], Verdict.rejected),
    (Mode.quorum, ["approve", "approve", None], Verdict.approved),
])
def test_evaluate_group_table(mode, decisions, verdict):
    tasks = [TaskState(step="s", branch=None, round=1, seq=10 * (i + 1), origin=Origin.route,
                       status=TaskStatus.done if d else TaskStatus.open, department="d", role="r",
                       assignee=i + 1, decision=d) for i, d in enumerate(decisions)]
    assert evaluate_group(tasks, mode, 2).verdict is verdict


# ------------------------------------------------------------------ return / withdraw inside 会签
def test_return_inside_huiqian_returns_the_whole_step_and_reruns_it():
    run = run_mode("all")
    first = run.decide(30, opinion="同意").changed[0]
    returner = run.task_of(31)
    effect = run.act(31, "return", returner, target="draft", opinion="缺少附件")
    assert run.step == "draft"
    assert statuses(run) == {1: "open"}                       # only the resubmission is current
    assert (first.decision, first.opinion, first.status) == ("approve", "同意", TaskStatus.done)
    assert [run.history[i].assignee for i in effect.trail.details["cancelled"]] == [32]
    run.act(1, "submit", run.open()[0])
    assert run.step == "all_step"
    assert statuses(run) == {30: "open", 31: "open", 32: "open"}  # everyone signs again
    for member in COMMITTEE:
        run.decide(member)
    assert run.status is InstanceStatus.approved
    kept = [t for t in run.history.values() if t.assignee == 30 and t.status is TaskStatus.done]
    assert len(kept) == 2                                     # both rounds' approvals are kept


def test_withdraw_inside_huiqian_only_before_any_member_decided():
    run = run_mode("all")
    run.act(1, "withdraw")
    assert run.status is InstanceStatus.withdrawn and set(statuses(run).values()) == {"cancelled"}
    run = run_mode("all")
    run.decide(30)
    with pytest.raises(Conflict, match="already acted"):
        run.act(1, "withdraw")
    assert run.status is InstanceStatus.running


def test_withdraw_after_a_rejection_vote_in_quorum_is_refused():
    run = run_mode("quorum")
    run.decide(30, "reject", opinion="否")
    with pytest.raises(Conflict):
        run.act(1, "withdraw")


# ------------------------------------------------------------------ parallel group (并联)
def at_joint() -> Run:
    run = Run("review", BIG)
    run.decide(2)
    return run


def test_parallel_opens_every_branch_and_joins_when_all_approve():
    run = at_joint()
    assert sorted([(t.branch, t.assignee) for t in run.open()], key=str) == \
        sorted([("industry", None), ("plan", 5), ("plan", 6)], key=str)
    assert run.decide(4).trail.details["verdict"] == "pending"
    assert run.decide(5).trail.details["verdict"] == "pending"
    effect = run.decide(6)
    assert effect.trail.details["verdict"] == "approved" and run.step == "sasac"


def test_parallel_one_branch_rejecting_rejects_the_step():
    run = at_joint()
    run.decide(5)
    effect = run.decide(4, "reject", opinion="不符合产业定位")
    assert run.status is InstanceStatus.rejected
    assert [run.history[i].assignee for i in effect.trail.details["cancelled"]] == [6]


def test_return_inside_a_parallel_group_cancels_every_branch_and_reruns_all():
    run = at_joint()
    industry = run.decide(4, opinion="符合").changed[0]
    effect = run.act(5, "return", run.task_of(5), target="assess", opinion="请重新评估投资强度")
    assert run.step == "assess"
    assert [run.history[i].assignee for i in effect.trail.details["cancelled"]] == [6]
    assert (industry.status, industry.opinion) == (TaskStatus.done, "符合")  # kept
    run.decide(3)
    assert run.step == "joint"
    assert len(run.open()) == 3 and all(t.round == run.inst.round for t in run.open())
    run.decide(5)
    run.decide(6)
    assert run.step == "joint"                                   # econ_it must decide again
    run.decide(4)
    assert run.step == "sasac"


def test_return_from_a_parallel_group_to_the_start():
    run = at_joint()
    run.act(4, "return", run.task_of(4), target="draft", opinion="补充材料")
    assert run.step == "draft" and not [t for t in run.inst.tasks if t.step == "joint"]


def test_withdraw_inside_a_parallel_group():
    run = at_joint()
    effect = run.act(1, "withdraw")
    assert run.status is InstanceStatus.withdrawn and len(effect.trail.details["cancelled"]) == 3
    run = at_joint()
    run.decide(4)                                                 # one branch has decided
    with pytest.raises(Conflict, match="already acted"):
        run.act(1, "withdraw")


def test_add_signer_inside_a_branch_holds_only_that_branch():
    run = at_joint()
    industry = run.task_of(4)
    [added] = run.act(4, "add_signer", industry, user=40, position="alongside").added
    assert added.branch == "industry"
    run.decide(4)
    run.decide(5)
    run.decide(6)
    assert run.step == "joint"                                   # the added signer is awaited
    run.act(40, "approve", added)
    assert run.step == "sasac"
