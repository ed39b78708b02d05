"""The process definitions shipped in `process_defs/`: they load cleanly, fit together (the
lifecycle's sub-process), use every approval mode, carry their file's SHA-256 as version identity,
the worked example in docs/process-definitions.md is the shipped file itself, and each process
runs through the engine's runtime along its main paths with demo-like people."""

from __future__ import annotations

import copy
import hashlib
import itertools
from datetime import datetime, timezone
from pathlib import Path

import pytest

from workflow_app.engine.errors import InvalidAction
from workflow_app.engine.loader import load_catalogue
from workflow_app.engine.runtime import Request, Runtime
from workflow_app.engine.schema import FieldType, Mode, StepType
from workflow_app.engine.spec import BUILTIN_TRIGGERS
from workflow_app.engine.state import SYSTEM, Actor, InstanceStatus, TaskStatus

ROOT = Path(__file__).resolve().parents[2]
DEFS = ROOT / "process_defs"
SHIPPED = ("park_project_lifecycle", "investment_review", "enterprise_admission",
           "low_efficiency_rectification")


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue([DEFS])


def test_loads_without_problems(catalogue):
    assert [str(p) for p in catalogue.problems] == []
    assert set(SHIPPED) <= set(catalogue.specs)


@pytest.mark.parametrize("key", SHIPPED)
def test_file_name_is_the_key(catalogue, key):
    assert Path(catalogue.specs[key].source).name == f"{key}.yaml"


def test_lifecycle_starts_investment_review_as_subprocess(catalogue):
    spec = catalogue.specs["park_project_lifecycle"]
    subs = [s for s in spec.steps.values() if s.type is StepType.subprocess]
    assert [s.process for s in subs] == ["investment_review"]


def test_subprocess_inputs_fit_the_child(catalogue):
    """The loader checks only the parent side of `inputs`; check the child side here."""
    parent = catalogue.specs["park_project_lifecycle"]
    for step in parent.steps.values():
        if step.type is not StepType.subprocess:
            continue
        child = catalogue.specs[step.process]
        for child_name, parent_name in step.inputs.items():
            assert child_name in child.field_map, f"{step.id}: {child_name} is not a field of {child.key}"
            src, dst = parent.field_map[parent_name], child.field_map[child_name]
            assert src.type == dst.type, f"{parent_name} -> {child_name}"
            if dst.type is FieldType.enum:
                assert set(src.choices) <= set(dst.choices), f"{parent_name} -> {child_name}"
        # the child is submitted at once with these values: every required field must be mapped
        required = {f.name for f in child.fields if f.required}
        assert required <= set(step.inputs), f"{step.id}: unmapped {sorted(required - set(step.inputs))}"


def test_every_mode_is_used(catalogue):
    used = set()
    for key in SHIPPED:
        for step in catalogue.specs[key].steps.values():
            if step.is_human:
                used.update(group[2] for group in step.groups())
    assert used == set(Mode)


def test_quorum_is_two_of_the_sasac_committee(catalogue):
    step = catalogue.specs["investment_review"].steps["sasac_gate"]
    assert (step.mode, step.quorum, step.assign.department) == (Mode.quorum, 2, "sasac")


def test_deemed_consent_on_a_parallel_branch(catalogue):
    review = catalogue.specs["low_efficiency_rectification"].steps["review"]
    assert any(b.deadline and b.deadline.deemed_consent for b in review.branches)


def test_collective_decision_fields_only_at_their_step(catalogue):
    spec = catalogue.specs["investment_review"]
    assert spec.steps["collective"].assign.department == "$submitter_group"
    for name in ("meeting_date", "attendees"):
        assert spec.field_map[name].editable_at == {"collective"}
        assert not spec.field_map[name].required


@pytest.mark.parametrize("key", SHIPPED)
def test_content_hash_is_sha256_of_the_file(catalogue, key):
    spec = catalogue.specs[key]
    raw = Path(spec.source).read_bytes()
    assert b"\r" not in raw  # LF endings, so sha256sum on the file gives the same hash
    assert spec.content_hash == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("key", SHIPPED)
def test_rules_title_field_and_labels(catalogue, key):
    spec = catalogue.specs[key]
    assert spec.title_field in spec.field_map
    assert spec.title.zh and spec.title.en
    for f in spec.fields:
        assert f.label.zh and f.label.en, f.name
    for step in spec.steps.values():
        assert step.title.zh and step.title.en, step.id
        if step.is_human:
            for group in step.groups():
                assert group[4] is not None, f"{step.id}: human steps have a deadline"
    for trigger in spec.custom_triggers():
        label = spec.trigger_label(trigger)
        assert label is not None and label.en, f"custom action {trigger!r} needs a label"
    assert not (set(spec.custom_triggers()) & set(BUILTIN_TRIGGERS))


def test_review_processes_separate_deciders(catalogue):
    for key in ("investment_review", "enterprise_admission", "low_efficiency_rectification"):
        assert catalogue.specs[key].rules.distinct_deciders, key


@pytest.mark.parametrize("key", SHIPPED)
def test_recusal_never_blocks_a_step_that_may_name_the_submitting_group(catalogue, key):
    """Recusal removes the submitting group from the candidates of every step not assigned to
    `$submitter` / `$submitter_group` (those are exempt): a file that switches it on must not
    route by `department_field`, which may name the submitter's own group (no one could be routed)."""
    spec = catalogue.specs[key]
    by_field = [s.id for s in spec.steps.values() if s.is_human
                for g in s.groups() if g[1].department_field or any(r.department_field for r in g[1].rule)]
    if by_field:
        assert spec.rules.recusal == "none", f"{key}: recusal could leave {by_field} with nobody"


def test_docs_worked_example_is_the_shipped_file():
    doc = (ROOT / "docs" / "process-definitions.md").read_text(encoding="utf-8")
    assert (DEFS / "investment_review.yaml").read_text(encoding="utf-8") in doc


# ---------------------------------------------------------------- run through the engine
# Demo-like people (user id -> memberships); the engine routes the shipped files to them.
PEOPLE = {
    1: [("zhentou", "submitter")], 2: [("zhentou", "head")], 3: [("zhentou", "operator")],
    4: [("haijiang", "submitter")], 5: [("haijiang", "head")], 6: [("haijiang", "operator")],
    11: [("econ_it", "reviewer")], 12: [("econ_it", "reviewer")], 13: [("econ_it", "head")],
    21: [("dev_reform", "reviewer")], 22: [("dev_reform", "reviewer")],
    31: [("invest_promo", "reviewer")], 32: [("invest_promo", "reviewer")], 33: [("invest_promo", "head")],
    41: [("sasac", "reviewer")], 42: [("sasac", "reviewer")], 43: [("sasac", "reviewer")],
    44: [("sasac", "head")],
}
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


class _Directory:
    def __init__(self, org):
        self.org = org

    def members(self, department, role):
        return [u for u, ms in sorted(PEOPLE.items()) if (department, role) in ms]

    def group_of(self, department):
        return self.org.group_of(department)

    def user_groups(self, user_id):
        return frozenset(self.org.group_of(d) for d, _ in PEOPLE.get(user_id, ()))


class _Run:
    """One application driven through `Runtime`, with ids and decided steps kept as the service would."""

    def __init__(self, catalogue, key, user, department, data, system=False):
        self.catalogue = catalogue
        self.runtime = Runtime(_Directory(catalogue.organisation))
        self.ids = itertools.count(1)
        actor = SYSTEM if system else self.actor(user)
        self.inst, effect = self.runtime.start(catalogue.specs[key], data, actor, department, NOW)
        self.child: _Run | None = None
        self._settle(effect)

    @staticmethod
    def actor(user):
        return Actor(user_id=user, name=f"user{user}", memberships=frozenset(PEOPLE[user]))

    def _settle(self, effect):
        decided = {u: set(s) for u, s in self.inst.decided_steps.items()}
        for t in self.inst.tasks:
            if t.id is None:
                t.id = next(self.ids)
            if t.status is TaskStatus.done and t.acted_by:
                decided.setdefault(t.acted_by, set()).add(t.step)
        self.inst.decided_steps = {u: frozenset(s) for u, s in decided.items()}
        if effect.start_child is not None:
            parent = self.inst
            child = _Run.__new__(_Run)
            child.catalogue, child.runtime, child.ids, child.child = self.catalogue, self.runtime, self.ids, None
            submitter = Actor(user_id=parent.submitter, name="parent", system=True,
                              memberships=frozenset({(parent.submitter_department, "submitter")}))
            child.inst, child_effect = self.runtime.start(
                self.catalogue.specs[effect.start_child.process], effect.start_child.data, submitter,
                parent.submitter_department, NOW)
            child._settle(child_effect)
            self.child = child

    def act(self, user, action, **kw):
        actor = self.actor(user)
        task = next(t for t in self.inst.tasks if t.status is TaskStatus.open
                    and self.runtime.may_decide(self.inst, t, actor) is None)
        saved = (copy.deepcopy(self.inst.tasks), dict(self.inst.data), self.inst.round,
                 self.inst.current_step)
        try:
            effect = self.runtime.act(self.inst, Request(action=action, task_id=task.id, **kw), actor, NOW)
        except Exception:  # the service rolls the transaction back; do the same here
            self.inst.tasks, self.inst.data, self.inst.round, self.inst.current_step = saved
            raise
        self._settle(effect)
        return self.inst.current_step

    def child_ended(self):
        assert self.child is not None
        self._settle(self.runtime.child_finished(self.inst, self.child.inst.status, 99, NOW))
        return self.inst.current_step


def test_investment_review_runs_the_whole_loop(catalogue):
    run = _Run(catalogue, "investment_review", 1, "zhentou", {
        "project_name": "新材料中试基地", "investment_type": "股权投资", "investment_wan": "6000",
        "lead_industry": "新材料", "proposal_file": "proposal.pdf"})
    assert run.act(31, "approve") == "policy"
    assert run.act(11, "approve") == "plan_fit"
    assert run.act(21, "approve") == "collective"          # ≥ 5000 万元: 三重一大 first
    assert run.act(2, "approve", opinion="党委会、董事会审议通过",
                   data={"meeting_date": "2026-02-27", "attendees": "7 人"}) == "sasac_gate"
    assert run.act(41, "approve", opinion="合规") == "sasac_gate"   # 1 of 2
    assert run.act(42, "approve", opinion="合规") == "invest_execution"
    with pytest.raises(InvalidAction):                       # no amount paid in yet
        run.act(3, "invested")
    assert run.act(3, "invested", data={"paid_in_wan": "6000"}) == "post_review"
    run.act(32, "approve")                                  # distinct deciders: not 31 again
    assert run.act(43, "approve") == "exit_decision"
    assert run.act(44, "hold", opinion="继续培育") == "post_review"
    run.act(32, "approve")
    run.act(43, "approve")
    assert run.act(44, "exit", opinion="启动转让", data={"exit_method": "股权转让"}) == "exited"
    assert run.inst.status is InstanceStatus.approved


def test_small_investment_goes_straight_to_sasac(catalogue):
    run = _Run(catalogue, "investment_review", 4, "haijiang", {
        "project_name": "园区配套", "investment_type": "园区载体建设", "investment_wan": "800",
        "lead_industry": "智能制造", "proposal_file": "p.pdf"})
    run.act(31, "approve")
    run.act(11, "approve")
    assert run.act(21, "approve") == "sasac_gate"


def test_lifecycle_with_equity_waits_for_investment_review(catalogue):
    run = _Run(catalogue, "park_project_lifecycle", 1, "zhentou", {
        "park_name": "澥浦新能源装备小微园", "owner_group": "zhentou", "location": "澥浦镇",
        "lead_industry": "新能源", "chain_description": "储能电池配套", "land_mu": "60",
        "floor_area_m2": "90000", "factory_area_m2": "80000", "planned_investment_wan": "45000",
        "design_file": "d.pdf", "attraction_plan_file": "a.pdf", "operator_dept": "haijiang",
        "soe_equity": True, "soe_investment_type": "股权投资", "soe_equity_wan": "3000",
        "investment_proposal_file": "p.pdf"})
    run.act(11, "approve")
    run.act(12, "approve")                                  # 会签: both econ_it reviewers
    run.act(21, "approve")
    assert run.act(31, "approve") == "investment"
    child = run.child
    assert child is not None and child.inst.spec.key == "investment_review"
    assert child.inst.current_step == "assess"
    assert child.inst.data["project_name"] == "澥浦新能源装备小微园"
    assert child.inst.data["investing_entity"] == "zhentou"
    child.act(32, "reject", opinion="不符合投资方向")
    assert run.child_ended() == "terminated"


def test_lifecycle_without_equity_reaches_operation(catalogue):
    run = _Run(catalogue, "park_project_lifecycle", 4, "haijiang", {
        "park_name": "蛟川智造小微园", "owner_group": "haijiang", "location": "蛟川街道",
        "lead_industry": "智能制造", "chain_description": "数控机床配套", "land_mu": "40",
        "floor_area_m2": "60000", "factory_area_m2": "52000", "planned_investment_wan": "30000",
        "design_file": "d.pdf", "attraction_plan_file": "a.pdf", "operator_dept": "haijiang"})
    for user in (11, 12, 21):
        run.act(user, "approve")
    assert run.act(31, "approve") == "land_transfer"
    run.act(5, "land_acquired", data={"land_contract_date": "2026-05-01"})
    run.act(5, "started", data={"start_date": "2026-07-01"})
    run.act(5, "completed", data={"completion_date": "2027-12-01", "split_sale_planned": True})
    assert run.act(11, "approve") == "sale_plan"
    with pytest.raises(InvalidAction):                       # more than the factory floor area
        run.act(5, "plan_submitted", data={"sale_area_m2": "60000"})
    assert run.act(5, "plan_submitted", data={"sale_area_m2": "20000"}) == "split_sale"
    run.act(12, "approve")
    assert run.act(41, "reject", opinion="价格低于评估价") == "handover"   # rent only
    assert run.act(6, "approve") == "operating"


def test_enterprise_admission_redirect_and_approval(catalogue):
    run = _Run(catalogue, "enterprise_admission", 4, "haijiang", {
        "enterprise_name": "宁波某精密电子有限公司", "credit_code": "91330211MA2XXXXXXX",
        "industry": "新型电子元件", "main_products": "片式电感", "area_needed_m2": "1200",
        "acceptable_floors": "二层及以上", "business_licence": "bl.pdf"})
    with pytest.raises(InvalidAction):                       # the park must be matched first
        run.act(31, "approve")
    run.act(31, "approve", data={"park_name": "招宝智造谷", "owner_group": "haijiang"})
    assert run.act(6, "redirect", opinion="二层已满") == "industry_fit"
    run.act(32, "approve", data={"park_name": "浦成小微园", "owner_group": "haijiang"})
    assert run.act(6, "approve", data={"offered_area_m2": "1180", "offered_floor": 2}) == "owner_approval"
    assert run.act(5, "approve") == "admitted"


def test_large_enterprise_goes_to_the_centre_head(catalogue):
    run = _Run(catalogue, "enterprise_admission", 1, "zhentou", {
        "enterprise_name": "某装备公司", "credit_code": "91330211MA2YYYYYYY", "industry": "高端装备",
        "main_products": "机器人", "area_needed_m2": "8000", "acceptable_floors": "仅限首层",
        "business_licence": "bl.pdf"})
    assert [(t.department, t.role) for t in run.inst.tasks] == [("invest_promo", "head")]


def test_rectification_closes_only_when_indicators_recover(catalogue):
    run = _Run(catalogue, "low_efficiency_rectification", None, "haijiang", {
        "park_name": "浦成小微园", "owner_group": "haijiang", "warning_level": "红色",
        "warning_date": "2026-03-02", "occupancy_pct": "52"}, system=True)
    assert run.inst.current_step == "plan"
    run.act(5, "plan_submitted", data={"target_occupancy_pct": "80", "target_tax_per_mu_wan": "15"})
    run.act(41, "approve")
    assert run.act(11, "return", target="plan", opinion="目标偏低") == "plan"
    run.act(5, "plan_submitted", data={"target_occupancy_pct": "85"})
    run.act(12, "approve")
    assert run.act(41, "approve") == "follow_up"
    run.act(6, "progress_reported", data={"current_occupancy_pct": "70", "current_tax_per_mu_wan": "12"})
    with pytest.raises(InvalidAction):
        run.act(13, "recovered", opinion="指标恢复")
    assert run.act(13, "extend", opinion="延期三个月") == "follow_up"
    run.act(6, "progress_reported", data={"current_occupancy_pct": "88", "current_tax_per_mu_wan": "16"})
    assert run.act(13, "recovered", opinion="指标恢复") == "closed"
    assert run.inst.status is InstanceStatus.approved
