"""`required_at`: a field that must be filled before a given step is approved (e.g. the meeting
date and attendees of a 三重一大 collective decision). The engine refuses the approval with a
field error, whoever approves and in whatever mode; rejecting and returning do not need it."""
from __future__ import annotations

import pytest

from tests.engine.harness import ORG, Run
from tests.engine.test_loader import BASE, FILE, check, one
from workflow_app.engine.errors import InvalidAction
from workflow_app.engine.loader import load_text

TEXT = BASE.replace(
    "  - {name: kind, type: enum, choices: [a, b], label: {zh: 类别}}\n",
    "  - {name: kind, type: enum, choices: [a, b], label: {zh: 类别}}\n"
    "  - {name: meeting_date, type: date, label: {zh: 会议日期}, editable_at: [sign], required_at: [sign]}\n"
    "  - {name: attendees, type: text, label: {zh: 参会人员}, editable_at: [sign], required_at: [sign]}\n")
SPEC = load_text(TEXT, FILE, ORG)


def to_sign() -> Run:
    run = Run(SPEC, {"amount": "500"})
    run.decide(7)
    assert run.step == "sign"
    return run


def test_approving_without_the_fields_is_refused_naming_them():
    run = to_sign()
    with pytest.raises(InvalidAction, match="meeting_date: required") as caught:
        run.decide(30)
    assert caught.value.details["fields"] == {"attendees": "required", "meeting_date": "required"}
    assert [t.status.value for t in run.open()] == ["open"] * 3        # nothing happened
    with pytest.raises(InvalidAction) as caught:
        run.decide(30, data={"meeting_date": "2026-03-01"})
    assert caught.value.details["fields"] == {"attendees": "required"}


def test_filled_in_the_same_action_or_earlier_it_passes_for_every_signer():
    run = to_sign()
    run.decide(30, data={"meeting_date": "2026-03-01", "attendees": "张三、李四"})
    run.decide(31)                               # 会签: already filled, the others just approve
    run.decide(32)
    assert run.status.value == "approved"


def test_reject_and_return_do_not_need_it_and_earlier_steps_are_not_affected():
    run = Run(SPEC, {"amount": "500"})
    run.decide(7)                                # `check` has no required_at
    run.decide(30, "reject", opinion="不同意")
    assert run.status.value == "rejected"


def test_loader_checks_required_at_steps():
    bad = TEXT.replace("required_at: [sign]}\n  - {name: attendees", "required_at: [sine]}\n  - {name: attendees")
    check(one(bad), 7, "fields[2].required_at[0]", "unknown step 'sine'")
    start = TEXT.replace("required_at: [sign]}\n  - {name: attendees", "required_at: [draft]}\n  - {name: attendees")
    check(one(start), 7, "fields[2].required_at[0]", "'draft' is a start step")
    assert SPEC.field_map["meeting_date"].required_at == frozenset({"sign"})
