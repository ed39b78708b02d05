"""`Forbidden` carries a stable machine `reason` (errors.REASONS) beside its English message, so
the API, the pages and the compliance console can tell self-approval from 回避 from a second
decision without parsing text (tests/fixtures/routing.yaml, review.yaml; people in harness.py)."""
from __future__ import annotations

import pytest

from tests.engine.harness import Run
from workflow_app.engine.errors import REASONS, Forbidden, InvalidAction, Refusal

REVIEW = {"project_name": "x", "investment_wan": "100", "industry": "新材料"}


def routing(**kw) -> Run:
    run = Run("routing", {"name": "星寓人才公寓", "owner_group": "haijiang", "area_m2": "6000"}, **kw)
    run.decide(22)
    return run


def test_self_approval_reason():
    run = Run("review", REVIEW, submitter=12)
    with pytest.raises(Forbidden) as caught:
        run.act(12, "approve", run.open()[0])
    assert caught.value.reason == "self_approval"
    assert caught.value.details["reason"] == "self_approval"   # what the API puts in `details`


def test_recusal_reason_also_on_a_handover_refusal():
    run = routing(submitter=11, department="xingyu")
    task = run.open()[0]
    with pytest.raises(Forbidden) as caught:
        run.act(8, "approve", task)
    assert caught.value.reason == "recusal"
    with pytest.raises(InvalidAction) as handed:
        run.act(7, "transfer", task, user=8)
    assert handed.value.details["reason"] == "recusal"


def test_same_decider_reason():
    run = routing(submitter=1, department="zhentou")
    run.decide(30, "hold", opinion="待审计复核")
    with pytest.raises(Forbidden) as caught:
        run.act(30, "approve", run.open()[0])
    assert caught.value.reason == "same_decider"


@pytest.mark.parametrize(("who", "action", "reason"), [
    (3, "approve", "not_assignee"), (40, "approve", "no_role"), (2, "withdraw", "not_submitter"),
    (2, "void", "admin_only")])
def test_other_refusals_have_their_codes(who, action, reason):
    run = Run("review", REVIEW)
    task = run.open()[0]
    if reason == "not_assignee":
        run.act(2, "claim", task)
    with pytest.raises(Forbidden) as caught:
        run.act(who, action, task, opinion="x")
    assert caught.value.reason == reason


def test_reasons_are_a_closed_set():
    with pytest.raises(ValueError):
        Forbidden("x", "made_up")
    refusal = Refusal("no", "recusal")
    assert refusal == "no" and refusal.forbidden(task_id=3).details == {"reason": "recusal", "task_id": 3}
    assert {"self_approval", "recusal", "same_decider"} <= REASONS
