"""The warning rules file and the grading: the shipped file validates, a broken one is reported
as FILE:LINE: KEY: message, metrics are annualised and weighted as documented, grades follow
the families, and the demo parks come out as the reply describes them (orange, not red)."""
from __future__ import annotations

import hashlib
from collections import defaultdict
from decimal import Decimal

import pytest

from workflow_app.domain import portfolio as pf
from workflow_app.domain.monitoring import (DEFAULT_RULES, METRICS, Grade, ParkFacts, PeriodFigures,
                                            compute_metrics, load_rules, load_rules_text, render)
from workflow_app.engine.errors import DefinitionError

PARK = ParkFacts("ZH-T01", "测试园", land_mu=Decimal(100), factory_area_m2=Decimal(50_000),
                 opened_year=2022, floor_areas={1: Decimal(20_000), 2: Decimal(15_000), 3: Decimal(15_000)})


def healthy(**changes) -> PeriodFigures:
    """A park that trips no rule: 90 % let, 30 万元/亩 tax, 500 万元/亩 output (per year)."""
    values = dict(period="2026Q3", occupancy_rate=Decimal("0.90"),
                  occupancy_by_floor={1: Decimal("0.95"), 2: Decimal("0.85"), 3: Decimal("0.85")},
                  tax_wan=Decimal(750), output_wan=Decimal(12_500), jobs=500, enterprises=20,
                  lead_chain_share=Decimal("0.75"))
    values.update(changes)
    return PeriodFigures(**values)


@pytest.fixture(scope="module")
def rules():
    return load_rules()


# --------------------------------------------------------------------------- the file

def test_shipped_rules_validate(rules):
    assert rules.version == 1 and len(rules.rules) >= 15
    assert rules.content_hash == hashlib.sha256(DEFAULT_RULES.read_bytes()).hexdigest()
    families = {r.indicator for r in rules.rules}
    assert families == {"occupancy", "upper_floor_occupancy", "tax_per_mu", "output_per_mu",
                        "jobs", "enterprises", "agglomeration"}
    # every condition names real metrics only, and every red rule waits for the ramp-up
    for r in rules.rules:
        assert r.condition.names <= set(METRICS)
        if r.grade is Grade.red:
            assert "years_open" in r.condition.names, r.id
    assert {r.indicator for r in rules.rules if r.grade is Grade.red} == {
        "occupancy", "upper_floor_occupancy", "tax_per_mu", "output_per_mu"}


def test_rules_are_outside_the_definitions_folder_scan():
    from workflow_app.engine.loader import definition_files
    assert DEFAULT_RULES not in definition_files([DEFAULT_RULES.parent.parent])


BROKEN = """\
version: 1
title: {zh: 规则}
rules:
  - id: a
    indicator: occupancy
    grade: red
    when: "occupancy_pct < 50"
    reason: {zh: "入驻率 {occupancy_pct}%"}
  - id: b
    indicator: occupancy
    grade: orange
    when: "vacancy_pct > 40"
    reason: {zh: "x {nope}"}
  - id: a
    indicator: tax
    grade: purple
    when: "1"
    reason: {zh: y}
    colour: red
  - id: c
    indicator: tax
    grade: yellow
    when: "__import__('os').system('true')"
    reason: {zh: z}
"""


def test_broken_rules_name_file_line_and_key():
    with pytest.raises(DefinitionError) as exc:
        load_rules_text(BROKEN, "rules.yaml")
    text = str(exc.value)
    # pydantic stops at the model level first: bad grade and unknown key
    assert "rules.yaml:16: rules[2].grade: Input should be 'yellow', 'orange' or 'red'" in text
    assert "rules.yaml:19: rules[2].colour: unknown key" in text


def test_broken_conditions_and_placeholders_are_reported_together():
    text = BROKEN.replace("    grade: purple\n", "    grade: red\n").replace("    colour: red\n", "")
    with pytest.raises(DefinitionError) as exc:
        load_rules_text(text, "rules.yaml")
    lines = str(exc.value).splitlines()
    assert "rules.yaml:12: rules[1].when: unknown field 'vacancy_pct'" in lines
    assert "rules.yaml:13: rules[1].reason.zh: unknown metric {nope}" in lines
    assert "rules.yaml:14: rules[2].id: duplicate rule 'a'" in lines
    assert any(line.startswith("rules.yaml:22: rules[3].when: ") for line in lines)  # no eval


def test_two_rules_of_one_grade_in_a_family_are_ambiguous():
    text = """\
version: 1
title: {zh: 规则}
rules:
  - {id: a, indicator: tax, grade: red, when: "tax_per_mu_wan < 5", reason: {zh: x}}
  - {id: b, indicator: tax, grade: red, when: "tax_per_mu_wan < 8", reason: {zh: y}}
"""
    expected = r"r\.yaml:5: rules\[1\]\.grade: indicator 'tax' already has a red rule"
    with pytest.raises(DefinitionError, match=expected):
        load_rules_text(text, "r.yaml")


def test_yaml_bombs_and_tags_are_refused():
    with pytest.raises(DefinitionError, match="custom tag"):
        load_rules_text("version: !!python/object:os.system 1\n", "r.yaml")


# --------------------------------------------------------------------------- metrics

def test_amounts_are_annualised_per_mu():
    quarter = compute_metrics(PARK, healthy(tax_wan=Decimal(250), output_wan=Decimal(2500)))
    month = compute_metrics(PARK, healthy(period="2026-10", tax_wan=Decimal(250), output_wan=Decimal(2500)))
    assert quarter["tax_per_mu_wan"] == Decimal("10.00")   # 250 × 4 / 100 mu
    assert quarter["output_per_mu_wan"] == Decimal("100.00")
    assert month["tax_per_mu_wan"] == Decimal("30.00")     # 250 × 12 / 100 mu
    assert quarter["jobs_per_10k_m2"] == Decimal("100.00")  # 500 / 5 万m²
    assert quarter["enterprises_per_10k_m2"] == Decimal("4.00")
    assert quarter["years_open"] == 4


def test_upper_floor_occupancy_is_weighted_by_floor_area():
    park = ParkFacts("ZH-T02", "t", Decimal(10), Decimal(10_000), 2020,
                     floor_areas={1: Decimal(1000), 2: Decimal(3000), 3: Decimal(1000)})
    m = compute_metrics(park, healthy(occupancy_by_floor={1: Decimal(1), 2: Decimal("0.2"), 3: Decimal("1")}))
    assert m["upper_floor_occupancy_pct"] == Decimal("40.00")  # (0.2×3000 + 1×1000) / 4000
    assert m["ground_floor_occupancy_pct"] == Decimal("100.00")
    unweighted = ParkFacts("ZH-T02", "t", Decimal(10), Decimal(10_000), 2020)
    assert compute_metrics(unweighted, healthy(occupancy_by_floor={2: Decimal("0.2"), 3: Decimal(1)}))[
        "upper_floor_occupancy_pct"] == Decimal("60.00")


def test_reasons_quote_the_compared_value():
    assert render("亩均税收 {tax_per_mu_wan} 万元; {missing}; {jobs}人",
                  {"tax_per_mu_wan": Decimal("14.96"), "jobs": 12}) == "亩均税收 14.96 万元; —; 12人"
    assert render("{__class__}", {}) == "—"


# --------------------------------------------------------------------------- grades

def test_a_healthy_park_has_no_warning(rules):
    a = rules.assess(PARK, healthy())
    assert (a.grade, a.hits, a.skipped) == (None, (), ())


@pytest.mark.parametrize("changes, grade, rule_ids", [
    (dict(occupancy_rate=Decimal("0.75")), Grade.yellow, ["occupancy_yellow"]),
    (dict(occupancy_rate=Decimal("0.55")), Grade.orange, ["occupancy_orange"]),
    (dict(occupancy_rate=Decimal("0.45")), Grade.red, ["occupancy_red"]),
    (dict(tax_wan=Decimal(300)), Grade.orange, ["tax_per_mu_orange"]),            # 12 万元/亩
    (dict(tax_wan=Decimal(200)), Grade.red, ["tax_per_mu_red"]),                  # 8 万元/亩
    (dict(output_wan=Decimal(6000)), Grade.yellow, ["output_per_mu_yellow"]),     # 240
    (dict(occupancy_by_floor={1: Decimal(1), 2: Decimal("0.1"), 3: Decimal("0.2")}),
     Grade.red, ["upper_floors_red"]),                                              # 15 %
    (dict(lead_chain_share=Decimal("0.35")), Grade.orange, ["agglomeration_orange"]),
    (dict(jobs=150), Grade.orange, ["jobs_orange"]),                                # 30 / 万m²
    (dict(enterprises=8), Grade.yellow, ["enterprises_yellow"]),                    # 1.6 / 万m²
])
def test_grades_on_crafted_indicators(rules, changes, grade, rule_ids):
    a = rules.assess(PARK, healthy(**changes))
    assert a.grade is grade
    assert a.rule_ids == rule_ids


def test_most_severe_rule_per_family_and_worst_family_wins(rules):
    a = rules.assess(PARK, healthy(occupancy_rate=Decimal("0.40"), tax_wan=Decimal(300),
                                   lead_chain_share=Decimal("0.55")))
    assert a.grade is Grade.red
    # one reason per family, most severe first; not red + orange + yellow for occupancy
    assert a.rule_ids == ["occupancy_red", "tax_per_mu_orange", "agglomeration_yellow"]
    assert a.reasons[0]["zh"] == "入驻率 40.00%，投运 4 年（按年份计）仍低于 50%"
    assert a.reasons[0]["grade"] == "red"


def test_a_new_park_is_not_red_before_its_second_year(rules):
    young = ParkFacts("ZH-T03", "新园", Decimal(100), Decimal(50_000), opened_year=2026)
    a = rules.assess(young, healthy(occupancy_rate=Decimal("0.30"), tax_wan=Decimal(100)))
    assert a.grade is Grade.orange
    assert a.rule_ids == ["occupancy_orange", "tax_per_mu_orange"]


def test_a_value_the_park_lacks_skips_the_rule(rules):
    unknown_age = ParkFacts("ZH-T04", "未知", Decimal(100), Decimal(50_000), opened_year=None)
    single_storey = healthy(occupancy_by_floor={1: Decimal("0.9")}, occupancy_rate=Decimal("0.45"))
    a = rules.assess(unknown_age, single_storey)
    assert a.grade is Grade.orange  # red needs years_open: not known, so not red
    skipped = dict(a.skipped)
    assert {"occupancy_red", "upper_floors_orange", "upper_floors_yellow"} <= set(skipped)
    assert "years_open" in skipped["occupancy_red"]


def test_demo_parks_are_orange_with_empty_upper_floors(rules):
    """The reply's picture — about 70 % let, 2F+ largely empty — is a warning, not a red case."""
    data = pf.load_file()
    latest = pf.latest_indicators(data)
    assert set(latest) == {"ZH-P01", "ZH-P02", "ZH-P03"}
    for code, ind in latest.items():
        park = data.park(code)
        areas: dict[int, Decimal] = defaultdict(Decimal)
        for b in park.buildings:
            for u in b.units:
                areas[u.floor] += u.area_m2
        facts = ParkFacts(code, park.name, park.land_mu, park.factory_area_m2, park.opened_year, dict(areas))
        a = rules.assess(facts, PeriodFigures(ind.period, ind.occupancy_rate, ind.occupancy_by_floor,
                                              ind.tax_wan, ind.output_wan, ind.jobs, ind.enterprises,
                                              ind.lead_chain_share))
        assert a.grade is Grade.orange, code
        assert {"upper_floors_orange", "occupancy_yellow"} <= set(a.rule_ids), code
        assert Decimal(30) < a.metrics["upper_floor_occupancy_pct"] < Decimal(40)
        assert a.metrics["ground_floor_occupancy_pct"] > Decimal(95)
