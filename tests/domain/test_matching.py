"""产业链精准匹配 on the demo portfolio's vacant units, and the homogeneity check on its parks."""
from __future__ import annotations

import random
from decimal import Decimal

import pytest

from workflow_app.domain import portfolio as pf
from workflow_app.domain.matching import (Candidate, Floors, Needs, ParkSummary, estimated_rent_wan,
                                          homogeneity, rank, related, score)


@pytest.fixture(scope="module")
def portfolio():
    return pf.load_file()


@pytest.fixture(scope="module")
def labels(portfolio):
    return {i.code: i.zh for i in portfolio.industries}


@pytest.fixture(scope="module")
def vacant(portfolio):
    return [Candidate(p.code, p.name, p.lead_industry, p.location, b.name, u.number, u.floor,
                      u.area_m2, u.floor_load_kn_m2, u.ceiling_height_m)
            for p in portfolio.parks for b in p.buildings for u in b.units
            if u.status is pf.UnitStatus.vacant]


@pytest.fixture(scope="module")
def parks(portfolio):
    return [ParkSummary(p.code, p.name, p.stage.value, p.location, p.lead_industry, p.owner_group,
                        p.factory_area_m2) for p in portfolio.parks]


def test_new_materials_firm_on_the_ground_floor_gets_the_new_materials_park_first(vacant, labels):
    ranking = rank(Needs("new_materials", Decimal(1500), Floors.ground_only), vacant, labels)
    first = ranking.matches[0]
    assert (first.candidate.park_name, first.candidate.floor) == ("新材料产业园", 1)
    assert (first.candidate.unit, first.score) == ("8-102", 100)
    assert first.reasons == [
        "园区主导产业（新材料）与企业产业一致（40/40）",
        "面积 1500 m²，为需求的 100%，面积适配（30/30）",
        "荷载 30 kN/m²、层高 8 m，满足需求（10/10）",
        "首层，符合楼层要求（10/10）",
        "估算年租金 45 万元（按示意参考租金 25 元/m²·月）（未提供预算）（10/10）",
    ]
    # only ground floors qualify; upper floors are listed with the reason they do not
    assert all(m.candidate.floor == 1 for m in ranking.matches)
    assert [m.candidate.park for m in ranking.matches] == ["ZH-P01", "ZH-P03"]
    assert ranking.matches[1].parts[0].points == 20  # 高端装备: on the new-materials chain
    assert len(ranking.matches) + len(ranking.rejected) == len(vacant)
    assert all(r.reasons == (f"{r.candidate.floor}层，不符合可接受楼层（仅限首层）",)
               for r in ranking.rejected)


def test_ordering_is_total_and_independent_of_input_order(vacant, labels):
    needs = Needs("smart_manufacturing", Decimal(1400), Floors.any)
    expected = [(m.candidate.park, m.candidate.unit) for m in rank(needs, vacant, labels).matches]
    shuffled = list(vacant)
    random.Random(7).shuffle(shuffled)
    assert [(m.candidate.park, m.candidate.unit) for m in rank(needs, shuffled, labels).matches] == expected
    assert len(set(expected)) == len(expected)


def test_a_small_firm_that_accepts_any_floor_is_steered_to_the_empty_upper_floors(vacant, labels):
    ranking = rank(Needs("smart_manufacturing", Decimal(1500), Floors.any, Decimal(8), Decimal(4.5)),
                   vacant, labels)
    top = ranking.matches[0]
    assert top.candidate.park == "ZH-P02" and top.candidate.floor >= 2 and top.score == 100
    assert "盘活二层及以上空置厂房" in top.parts[3].reason


def test_hard_needs_exclude_units_with_the_reasons(vacant, labels):
    ranking = rank(Needs("high_end_equipment", Decimal(1200), Floors.any, Decimal(25), Decimal(7)),
                   vacant, labels)
    assert {(m.candidate.park, m.candidate.unit) for m in ranking.matches} == {
        ("ZH-P01", "8-102"), ("ZH-P03", "6-102")}
    assert ranking.matches[0].candidate.park == "ZH-P03"  # its own industry beats the chain
    upstairs = next(r for r in ranking.rejected
                    if (r.candidate.park, r.candidate.unit) == ("ZH-P01", "7-402"))
    assert upstairs.reasons == ("楼面荷载 8 kN/m² < 需求 25", "层高 4.8 m < 需求 7")


def test_a_light_user_of_a_heavy_high_bay_unit_loses_capacity_points(vacant, labels):
    unit = next(c for c in vacant if (c.park, c.unit) == ("ZH-P01", "8-102"))
    light = score(Needs("new_materials", Decimal(1500), Floors.any, Decimal(5), Decimal(4)), unit, labels)
    assert light.parts[2].points == 5 and "宜优先留给需要的企业" in light.parts[2].reason
    heavy = score(Needs("new_materials", Decimal(1500), Floors.any, Decimal(25), Decimal(7)), unit, labels)
    assert heavy.parts[2].points == 10


def test_area_and_budget_scoring(vacant, labels):
    unit = next(c for c in vacant if (c.park, c.unit) == ("ZH-P02", "7-202"))  # 2,500 m², 2F
    assert estimated_rent_wan(unit) == Decimal("54.0")  # 2500 × 18 元 × 12
    small_need = score(Needs("smart_manufacturing", Decimal(1000), Floors.any), unit, labels)
    assert small_need.parts[1].points == 5 and "远超需求" in small_need.parts[1].reason
    larger = score(Needs("smart_manufacturing", Decimal(1600), Floors.any,
                         budget_wan_per_year=Decimal(50)), unit, labels)
    assert larger.parts[1].points == 22  # 156 %: 30 - (1.5625 - 1.25) / 0.75 × 20 = 21.7
    assert larger.parts[4].points == 5 and "超出预算 50 万元不到 20%" in larger.parts[4].reason
    assert score(Needs("smart_manufacturing", Decimal(2400), Floors.any,
                       budget_wan_per_year=Decimal(40)), unit, labels).parts[4].points == 0


def test_form_labels_and_chains():
    assert Floors.from_label("首层或二层").accepts(2) and not Floors.from_label("首层或二层").accepts(3)
    assert Floors.from_label("二层及以上").accepts(2) and not Floors.upper_only.accepts(1)
    assert related("new_energy", "new_materials") and related("new_materials", "new_energy")
    assert not related("pharmaceutical", "smart_manufacturing")
    with pytest.raises(ValueError):
        Floors.from_label("三楼")
    with pytest.raises(ValueError):
        rank(Needs("new_materials", Decimal(0)), [])


# --------------------------------------------------------------------------- homogeneity

def test_planned_park_repeating_built_ones_in_its_location_is_flagged(parks, labels):
    result = homogeneity("招宝山街道", "smart_manufacturing", parks, exclude="ZH-P07")
    assert result.flagged
    assert [(p.code, p.stage) for p in result.duplicates] == [
        ("ZH-P02", "operating"), ("ZH-P04", "construction")]
    assert result.evidence(labels) == [
        "ZH-P02 招宝智造谷（已建成运营，招宝山街道，主导产业智能制造，厂房 77000 m²）",
        "ZH-P04 招宝山智能制造小微园(示意)（在建，招宝山街道，主导产业智能制造，厂房 124000 m²）",
    ]
    assert round(result.district_share * 100) == 39  # 智能制造 904,000 of 2,340,000 m²


def test_an_application_repeating_the_jiaochuan_new_materials_cluster(parks):
    result = homogeneity("蛟川街道", "new_materials", parks)
    assert [p.code for p in result.duplicates] == ["ZH-P01", "ZH-P05", "ZH-P09"]


def test_different_industry_or_place_is_not_flagged(parks):
    assert not homogeneity("招宝山街道", "new_materials", parks, exclude="ZH-P08").flagged
    pharma = homogeneity("澥浦镇", "pharmaceutical", parks)
    assert not pharma.flagged and pharma.leads_no_park and pharma.district_share == 0
