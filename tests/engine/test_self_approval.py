"""Self-approval and 回避 around steps assigned to the submitting side (docs section 3).

- A `$submitter` step (补正, confirmations) is the submitter's own work: they act on it.
- A `$submitter_group` step is the group's decision: its members decide, never the submitter
  personally (not routed, not by claiming, not as a delegate or transferee); 回避 does not apply.
- Every other step: neither the submitter nor (with recusal) their group decides — also when the
  form data changed after routing so that a rule table would now pick the submitting side.
"""
from __future__ import annotations

import pytest

from tests.engine.harness import ORG, PEOPLE, Run
from workflow_app.engine.errors import Forbidden, InvalidAction
from workflow_app.engine.loader import load_text

# 12 submits for zhentou and is also one of zhentou's heads; 21 and 23 are its other heads.
PEOPLE_HEADS = {**PEOPLE, 12: [("zhentou", "submitter"), ("zhentou", "head")], 23: [("zhentou", "head")]}


def spec(mode: str = "single"):
    return load_text(f"""\
key: sides
version: "1"
title: {{zh: 自审测试}}
rules: {{recusal: submitter_group}}
fields:
  - {{name: area_m2, type: decimal, label: {{zh: 面积}}, required: true}}
steps:
  - {{id: draft, type: start, title: {{zh: 填报}}}}
  - id: decide
    type: task
    title: {{zh: 审查}}
    mode: {mode}
    assign:
      rule:
        - {{when: "area_m2 >= 5000", department: $submitter_group, role: head}}
        - {{department: sasac, role: head}}
  - {{id: group, type: task, title: {{zh: 集团决策}}, mode: {mode}, assign: {{department: $submitter_group, role: head}}}}
  - {{id: confirm, type: task, title: {{zh: 确认}}, assign: {{department: $submitter, role: submitter}}}}
  - {{id: ok, type: end, title: {{zh: 通过}}, outcome: approved}}
  - {{id: refused, type: end, title: {{zh: 不通过}}, outcome: rejected}}
transitions:
  - {{trigger: submit, source: draft, dest: decide}}
  - {{trigger: approve, source: decide, dest: group}}
  - {{trigger: approve, source: group, dest: confirm}}
  - {{trigger: approve, source: confirm, dest: ok}}
  - {{trigger: reject, source: [decide, group, confirm], dest: refused}}
""", "sides.yaml", ORG)


def to_group(mode: str = "single") -> Run:
    run = Run(spec(mode), {"area_m2": "100"}, submitter=12, department="zhentou", people=PEOPLE_HEADS)
    for task in run.open():
        run.act(task.assignee or 7, "approve", task)
    assert run.step == "group"
    return run


def test_the_submitter_never_decides_the_group_step_even_as_its_head():
    run = to_group()
    [queue] = run.open()
    for action in ("claim", "approve"):
        with pytest.raises(Forbidden) as caught:
            run.act(12, action, queue)
        assert caught.value.reason == "self_approval"
    with pytest.raises(InvalidAction, match="submitter cannot decide"):
        run.act(21, "transfer", queue, user=12)
    with pytest.raises(Forbidden) as stand_in:
        run.act(12, "approve", queue, on_behalf_of=21)   # nor as a fellow head's stand-in
    assert stand_in.value.reason == "self_approval"
    run.act(21, "claim", queue)
    with pytest.raises(InvalidAction, match="submitter cannot decide"):
        run.act(21, "delegate", queue, user=12)
    run.decide(21)                                  # a fellow head of the group: its own act, no 回避
    assert run.step == "confirm"


def test_group_step_in_all_mode_does_not_route_the_submitter():
    run = to_group("all")
    assert sorted(t.assignee for t in run.open()) == [21, 23]


def test_the_submitter_step_is_their_own_work():
    run = to_group()
    run.decide(21)
    [task] = run.open()
    assert task.assignee == 12
    run.act(12, "approve", task)                    # neither self-approval nor 回避
    assert run.status.value == "approved"


def test_a_review_task_stays_a_review_when_the_data_changes_after_routing():
    """Routed to sasac (area below 5000); the submitter then raises the area through 补正, so the
    rule table would now pick `$submitter_group`. The task is still sasac's review: the
    submitter's group (8 works for 星寓, in zhentou's tree) stays recused."""
    run = Run(spec(), {"area_m2": "100"}, submitter=11, department="xingyu")
    [queue] = run.open()
    assert (queue.department, queue.role) == ("sasac", "head")
    run.act(7, "claim", queue)
    run.act(7, "release", queue)
    run.act(30, "supplement", queue, opinion="请补充面积")
    ask = next(t for t in run.open() if t.assignee == 11)
    run.act(11, "submit", ask, data={"area_m2": "9000"})
    with pytest.raises(Forbidden) as caught:
        run.act(8, "claim", queue)
    assert caught.value.reason == "recusal"
    run.decide(7)
    assert run.step == "group"


def test_a_review_task_refuses_the_submitter_after_such_a_change():
    people = {**PEOPLE_HEADS, 12: PEOPLE_HEADS[12] + [("sasac", "head")]}
    run = Run(spec(), {"area_m2": "100"}, submitter=12, department="zhentou", people=people)
    [queue] = run.open()
    run.act(7, "supplement", queue, opinion="请补充面积")
    ask = next(t for t in run.open() if t.assignee == 12)
    run.act(12, "submit", ask, data={"area_m2": "9000"})
    with pytest.raises(Forbidden) as caught:
        run.act(12, "approve", queue)
    assert caught.value.reason == "self_approval"
