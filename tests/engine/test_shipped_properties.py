"""Property test over EVERY shipped process in process_defs/ (the service-level one,
tests/services/test_properties.py, drives the `review` fixture): random sequences of actions the
engine allows (decide, return, custom actions, claim, withdraw, void, a sub-process's outcome),
with the fields editable at a step filled in, a stored-form round trip now and then, checking
after every action:

- an accepted action yields exactly one trail entry; the entries form a chain that verifies;
- a refused action (a condition not met, data out of range) leaves the instance as it was;
- a finished instance has no open or waiting task; a running one waits in a real step, its live
  tasks all in that step and round (none while it waits on a sub-process);
- no task is decided twice.

Few examples per definition keep it fast (engine only, no database).
"""
from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.directory import MemoryDirectory
from tests.engine.harness import NOW, Run
from workflow_app.engine.errors import Conflict, InvalidAction
from workflow_app.engine.loader import load_catalogue
from workflow_app.engine.runtime import Runtime
from workflow_app.engine.schema import FieldType, StepType
from workflow_app.engine.spec import BUILTIN_TRIGGERS
from workflow_app.engine.state import SYSTEM, InstanceStatus, Origin, TaskStatus
from workflow_app.engine.trail import GENESIS, event_hash, verify_chain
from tests.engine.test_shipped_definitions import DEFS, SHIPPED

CATALOGUE = load_catalogue([DEFS])
# Demo-like people (as in test_shipped_definitions), two of each deciding role so that
# distinct deciders and 会签 can both be satisfied; 99 is the system administrator.
PEOPLE = {
    1: [("zhentou", "submitter")], 2: [("zhentou", "head")], 3: [("zhentou", "operator")],
    7: [("zhentou", "head")], 8: [("zhentou", "operator")],
    4: [("haijiang", "submitter")], 5: [("haijiang", "head")], 6: [("haijiang", "operator")],
    9: [("haijiang", "head")], 10: [("haijiang", "operator")],
    11: [("econ_it", "reviewer")], 12: [("econ_it", "reviewer")], 13: [("econ_it", "head")],
    21: [("dev_reform", "reviewer")], 22: [("dev_reform", "reviewer")], 23: [("dev_reform", "head")],
    31: [("invest_promo", "reviewer")], 32: [("invest_promo", "reviewer")], 33: [("invest_promo", "head")],
    34: [("invest_promo", "head")],
    41: [("sasac", "reviewer")], 42: [("sasac", "reviewer")], 43: [("sasac", "reviewer")],
    44: [("sasac", "head")], 45: [("sasac", "head")],
    99: [],
}
# (submitter or None for a system start, department, form data)
STARTS = {
    "investment_review": (1, "zhentou", {
        "project_name": "新材料中试基地", "investment_type": "股权投资", "investment_wan": "6000",
        "lead_industry": "新材料", "proposal_file": "proposal.pdf"}),
    "park_project_lifecycle": (1, "zhentou", {
        "park_name": "澥浦新能源装备小微园", "owner_group": "zhentou", "location": "澥浦镇",
        "lead_industry": "新能源", "chain_description": "储能电池配套", "land_mu": "60",
        "floor_area_m2": "90000", "factory_area_m2": "80000", "planned_investment_wan": "45000",
        "design_file": "d.pdf", "attraction_plan_file": "a.pdf", "operator_dept": "haijiang",
        "soe_equity": True, "soe_investment_type": "股权投资", "soe_equity_wan": "3000",
        "investment_proposal_file": "p.pdf"}),
    "enterprise_admission": (4, "haijiang", {
        "enterprise_name": "宁波某精密电子有限公司", "credit_code": "91330211MA2XXXXXXX",
        "industry": "新型电子元件", "main_products": "片式电感", "area_needed_m2": "1200",
        "acceptable_floors": "二层及以上", "business_licence": "bl.pdf"}),
    "low_efficiency_rectification": (None, "haijiang", {
        "park_name": "浦成小微园", "owner_group": "haijiang", "warning_level": "红色",
        "warning_date": "2026-03-02", "occupancy_pct": "52"}),
}


def test_every_shipped_process_is_covered():
    assert set(STARTS) == set(SHIPPED) == set(CATALOGUE.specs) - {"organisation"}


class ShippedRun(Run):
    """`harness.Run` (ids, rollback on refusal, stored-form reload) started like the service
    does for each shipped process, including system starts, with the sub-process outcome as a move."""

    def __init__(self, key: str):
        submitter, department, data = STARTS[key]
        self.spec = CATALOGUE.specs[key]
        self.directory = MemoryDirectory(PEOPLE)
        self.runtime = Runtime(self.directory)
        self.ids = itertools.count(1)
        self.history, self.effects = {}, []
        actor = SYSTEM if submitter is None else self.actor(submitter)
        self.inst, effect = self.runtime.start(self.spec, data, actor, department, NOW)
        self._settle(effect)

    def child_outcome(self, outcome: InstanceStatus):
        effect = self.runtime.child_finished(self.inst, outcome, 999, NOW)
        self._settle(effect)
        return effect


def fill(spec, step: str) -> dict:
    """A plausible value for every field editable at `step` (within its bounds)."""
    out = {}
    for f in spec.fields:
        if step not in f.editable_at:
            continue
        if f.type in (FieldType.decimal, FieldType.integer):
            value = f.min if f.min is not None else (f.max if f.max is not None else 100)
            out[f.name] = str(int(value) if f.type is FieldType.integer else value)
        elif f.type is FieldType.date:
            out[f.name] = "2026-03-01"
        elif f.type is FieldType.enum:
            out[f.name] = f.choices[0]
        elif f.type is FieldType.boolean:
            out[f.name] = True
        elif f.type is FieldType.department:
            out[f.name] = "haijiang"
        else:
            out[f.name] = "材料.pdf" if f.type is FieldType.attachment else "说明"
    return out


def moves(run: ShippedRun) -> list[tuple]:
    inst, spec = run.inst, run.inst.spec
    if inst.status is not InstanceStatus.running:
        return []
    step = spec.steps[inst.current_step]
    if step.type is StepType.subprocess:
        return [("child", InstanceStatus.approved), ("child", InstanceStatus.rejected)]
    out: list[tuple] = [("act", 99, "void", None, {"opinion": "测试作废"})]
    if spec.rules.withdraw and inst.submitter:
        out.append(("act", inst.submitter, "withdraw", None, {"opinion": "撤回"}))
    triggers = spec.triggers_from(step.id)
    custom = [t for t in triggers if t not in BUILTIN_TRIGGERS]
    for task in [t for t in inst.tasks if t.status is TaskStatus.open]:
        people = [u for u in PEOPLE if run.runtime.may_decide(inst, task, run.actor(u)) is None][:3]
        for who in people:
            if task.origin is Origin.start:
                out.append(("act", who, "submit", task.id, {}))
                continue
            data = fill(spec, task.step)
            out += [("act", who, "approve", task.id, {"data": data, "opinion": "同意"})
                    for _ in ("approve",) if "approve" in triggers]
            out += [("act", who, "reject", task.id, {"opinion": "不同意"})
                    for _ in ("reject",) if "reject" in triggers]
            out += [("act", who, "return", task.id, {"target": target, "opinion": "退回"})
                    for target in step.return_to]
            out += [("act", who, trigger, task.id, {"data": data, "opinion": "处理"}) for trigger in custom]
            if task.assignee is None:
                out.append(("act", who, "claim", task.id, {}))
    return out


# Mostly forward, so that flows get deep (parallel groups, loops, sub-processes) before a
# withdraw, reject or void ends them; custom actions weigh as much as approve.
WEIGHTS = {"approve": 8, "submit": 8, "claim": 2, "return": 2, "reject": 1, "withdraw": 1, "void": 1}


def weighted(options: list[tuple]) -> list[tuple]:
    return [m for m in options for _ in range(4 if m[0] == "child" else WEIGHTS.get(m[2], 8))]


def state(run: ShippedRun) -> str:
    inst = run.inst
    return json.dumps([inst.status.value, inst.current_step, inst.round, inst.data,
                       sorted((t.id, t.status.value, t.assignee) for t in inst.tasks)], default=str)


def check(run: ShippedRun) -> None:
    inst = run.inst
    live = [t for t in inst.tasks if t.active]
    if inst.status is not InstanceStatus.running:
        assert live == [], f"{inst.status} instance with live tasks {live}"
        return
    step = inst.spec.steps[inst.current_step]
    assert step.type is not StepType.end
    if step.type is StepType.subprocess:
        assert live == []
    else:
        assert live, "a running instance waits for nobody"
        assert {(t.step, t.round) for t in live} == {(inst.current_step, inst.round)}


@pytest.mark.parametrize("key", sorted(STARTS))
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_allowed_actions_keep_the_invariants(key, data):
    run = ShippedRun(key)
    chain, decided = [], set()

    def record(effect) -> None:
        entry = effect.trail
        event = {"instance_id": 1, "seq": len(chain) + 1, "action": entry.action,
                 "from_step": entry.from_step, "to_step": entry.to_step, "opinion": entry.opinion,
                 "task_id": entry.task_id, "details": json.loads(json.dumps(entry.details, default=str)),
                 "created_at": datetime(2026, 3, 2, tzinfo=timezone.utc)}
        event["prev_hash"] = chain[-1]["hash"] if chain else GENESIS
        event["hash"] = event_hash(event["prev_hash"], event)
        chain.append(event)
        for t in effect.changed:
            if t.status is TaskStatus.done and t.decision not in (None, "claim"):
                assert t.id not in decided, f"task {t.id} decided twice"
                decided.add(t.id)

    record(run.effects[-1])
    check(run)
    for _ in range(data.draw(st.integers(1, 40), label="length")):
        options = moves(run)
        if not options:
            break
        move = data.draw(st.sampled_from(weighted(options)), label="move")
        before = state(run)
        if move[0] == "child":
            record(run.child_outcome(move[1]))
        else:
            _kind, who, action, task_id, kw = move
            try:
                record(run.act(who, action, task_id, **kw))
            except (InvalidAction, Conflict):
                assert state(run) == before, f"refused {move} changed the instance"
                continue
        check(run)
        if data.draw(st.integers(0, 7), label="reload?") == 0:
            run.reload()
            check(run)
    n, broken = verify_chain(chain, chain[-1]["hash"], len(chain))
    assert broken is None and n == len(chain)
