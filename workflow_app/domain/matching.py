"""产业链精准匹配 (matching enterprises to vacant units along industrial chains) and the
homogeneity check at planning review (严控同质化项目重复建设).

Pure: no Flask, no database. `services.matching` reads the vacant units and parks and calls these.

Matching. A unit is *eligible* when it meets the enterprise's hard needs — an acceptable floor, at
least the floor load and ceiling height asked for, at least 80 % of the area asked for (a firm can
usually adapt a little; a much smaller unit is no offer). Ineligible units are returned with the
reasons, so 投促中心 can say why a park was not offered. Eligible units get a score out of 100,
each part with its reason:
  industry 40  the park's lead industry is the firm's (40), on the same chain (20), else 0
  area     30  30 when the unit is 90-125 % of the need, less when smaller or much larger
  capacity 10  10, or 5 when a firm whose stated load and height are at most half / two thirds
               of a heavy-load, high-bay unit's would take it from the firms that need one
               (the reply: 大企业招不到, 小企业没法用)
  floor    10  an acceptable floor; 2F+ is what the reply says stands empty, so a firm that
               accepts any floor scores 10 upstairs and 8 on the ground floor
  budget   10  estimated rent within the budget (10), up to 20 % over (5), beyond (0); no budget: 10
Ties are broken by area closeness, then park code, building and unit number: the order is total.

Rent is not in the portfolio data; the estimate uses REFERENCE_RENT (illustrative Zhenhai standard
factory rents, 元/m²·月) and says so in its reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Iterable, Mapping

AREA_MIN_RATIO = Decimal("0.8")
# Illustrative reference rents (元/m² per month) for standard factory space in Zhenhai: ground
# floors with high load and height let for more than upper floors. Replace with the operators' own
# price lists when they exist.
REFERENCE_RENT = {"ground": Decimal(25), "upper": Decimal(18)}

# Industries on one chain (upstream/downstream or shared suppliers), both directions. Codes are
# those of portfolio_data.yaml's `industries`.
CHAINS: frozenset[frozenset[str]] = frozenset({
    frozenset({"smart_manufacturing", "high_end_equipment"}),      # machines, robots, automation
    frozenset({"smart_manufacturing", "electronic_components"}),   # sensors, controllers
    frozenset({"integrated_circuits", "electronic_components"}),   # chips -> components
    frozenset({"new_materials", "new_energy"}),                    # battery / PV materials
    frozenset({"new_materials", "integrated_circuits"}),           # electronic chemicals, wafers
    frozenset({"new_materials", "high_end_equipment"}),            # special alloys, composites
    frozenset({"new_materials", "pharmaceutical"}),                # fine chemicals, polymers
})


def related(a: str, b: str) -> bool:
    return frozenset({a, b}) in CHAINS


class Floors(str, Enum):
    """Acceptable floors, as the admission form asks them (可接受楼层)."""

    ground_only = "ground_only"        # 仅限首层
    ground_or_second = "ground_or_second"  # 首层或二层
    upper_only = "upper_only"          # 二层及以上
    any = "any"                        # 不限

    @classmethod
    def from_label(cls, text: str) -> "Floors":
        labels = {"仅限首层": cls.ground_only, "首层或二层": cls.ground_or_second,
                  "二层及以上": cls.upper_only, "不限": cls.any}
        return labels.get(text) or cls(text)

    def accepts(self, floor: int) -> bool:
        return {Floors.ground_only: floor == 1, Floors.ground_or_second: floor <= 2,
                Floors.upper_only: floor >= 2, Floors.any: True}[self]

    @property
    def label_zh(self) -> str:
        return {"ground_only": "仅限首层", "ground_or_second": "首层或二层",
                "upper_only": "二层及以上", "any": "不限"}[self.value]


@dataclass(frozen=True)
class Needs:
    industry: str  # industry code
    area_m2: Decimal
    floors: Floors = Floors.any
    floor_load_kn_m2: Decimal | None = None
    ceiling_height_m: Decimal | None = None
    budget_wan_per_year: Decimal | None = None


@dataclass(frozen=True)
class Candidate:
    """A vacant unit with what matching needs to know about its park."""

    park: str
    park_name: str
    lead_industry: str
    location: str
    building: str
    unit: str
    floor: int
    area_m2: Decimal
    floor_load_kn_m2: Decimal
    ceiling_height_m: Decimal


@dataclass(frozen=True)
class Part:
    name: str  # industry | area | capacity | floor | budget
    points: int
    max_points: int
    reason: str


@dataclass(frozen=True)
class Match:
    candidate: Candidate
    score: int
    parts: tuple[Part, ...]

    @property
    def reasons(self) -> list[str]:
        return [f"{p.reason}（{p.points}/{p.max_points}）" for p in self.parts]


@dataclass(frozen=True)
class Rejected:
    candidate: Candidate
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Ranking:
    matches: tuple[Match, ...]
    rejected: tuple[Rejected, ...]


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"


def estimated_rent_wan(c: Candidate) -> Decimal:
    """Yearly rent in 万元 at the reference rent of the unit's floor."""
    rent = REFERENCE_RENT["ground" if c.floor == 1 else "upper"]
    return (c.area_m2 * rent * 12 / 10_000).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def hard_checks(needs: Needs, c: Candidate) -> list[str]:
    """Why the unit cannot be offered (empty when it can)."""
    out = []
    if not needs.floors.accepts(c.floor):
        out.append(f"{c.floor}层，不符合可接受楼层（{needs.floors.label_zh}）")
    if needs.floor_load_kn_m2 is not None and c.floor_load_kn_m2 < needs.floor_load_kn_m2:
        out.append(f"楼面荷载 {_fmt(c.floor_load_kn_m2)} kN/m² < 需求 {_fmt(needs.floor_load_kn_m2)}")
    if needs.ceiling_height_m is not None and c.ceiling_height_m < needs.ceiling_height_m:
        out.append(f"层高 {_fmt(c.ceiling_height_m)} m < 需求 {_fmt(needs.ceiling_height_m)}")
    if c.area_m2 < needs.area_m2 * AREA_MIN_RATIO:
        out.append(f"面积 {_fmt(c.area_m2)} m² 不足需求 {_fmt(needs.area_m2)} m² 的 80%")
    return out


def score(needs: Needs, c: Candidate, industry_label: Mapping[str, str] | None = None) -> Match:
    label = (industry_label or {}).get
    lead = label(c.lead_industry) or c.lead_industry
    if c.lead_industry == needs.industry:
        industry = Part("industry", 40, 40, f"园区主导产业（{lead}）与企业产业一致")
    elif related(c.lead_industry, needs.industry):
        industry = Part("industry", 20, 40, f"园区主导产业（{lead}）与企业产业同属一条产业链")
    else:
        industry = Part("industry", 0, 40, f"园区主导产业（{lead}）与企业产业不相关")

    ratio = c.area_m2 / needs.area_m2
    area_text = f"面积 {_fmt(c.area_m2)} m²，为需求的 {int((ratio * 100).to_integral_value(ROUND_HALF_UP))}%"
    if Decimal("0.9") <= ratio <= Decimal("1.25"):
        area = Part("area", 30, 30, area_text + "，面积适配")
    elif ratio < Decimal("0.9"):
        area = Part("area", 20, 30, area_text + "，略小")
    elif ratio <= 2:
        # 1.25 -> 30 down to 2.0 -> 10: the firm pays for and leaves empty what it does not use
        points = int((30 - (ratio - Decimal("1.25")) / Decimal("0.75") * 20).to_integral_value(ROUND_HALF_UP))
        area = Part("area", points, 30, area_text + "，偏大")
    else:
        area = Part("area", 5, 30, area_text + "，远超需求")

    heavy = c.floor_load_kn_m2 >= 30 and c.ceiling_height_m >= 8
    # only a firm that said what it needs can be called light; silence is not a need of zero
    light = (needs.floor_load_kn_m2 is not None and needs.ceiling_height_m is not None
             and needs.floor_load_kn_m2 <= c.floor_load_kn_m2 / 2
             and needs.ceiling_height_m <= c.ceiling_height_m / Decimal("1.5"))
    spec = f"荷载 {_fmt(c.floor_load_kn_m2)} kN/m²、层高 {_fmt(c.ceiling_height_m)} m"
    if heavy and light:
        capacity = Part("capacity", 5, 10, f"{spec}，大荷载高层高厂房宜优先留给需要的企业")
    else:
        capacity = Part("capacity", 10, 10, f"{spec}，满足需求")

    if needs.floors is Floors.any and c.floor == 1:
        floor = Part("floor", 8, 10, "首层（企业不限楼层，二层及以上空置更需盘活）")
    elif c.floor >= 2:
        floor = Part("floor", 10, 10, f"{c.floor}层，盘活二层及以上空置厂房")
    else:
        floor = Part("floor", 10, 10, "首层，符合楼层要求")

    rent, limit = estimated_rent_wan(c), needs.budget_wan_per_year
    reference = REFERENCE_RENT["ground" if c.floor == 1 else "upper"]
    rent_text = f"估算年租金 {_fmt(rent)} 万元（按示意参考租金 {_fmt(reference)} 元/m²·月）"
    if limit is None:
        budget = Part("budget", 10, 10, f"{rent_text}（未提供预算）")
    elif rent <= limit:
        budget = Part("budget", 10, 10, f"{rent_text}，在预算 {_fmt(limit)} 万元内")
    elif rent <= limit * Decimal("1.2"):
        budget = Part("budget", 5, 10, f"{rent_text}，超出预算 {_fmt(limit)} 万元不到 20%")
    else:
        budget = Part("budget", 0, 10, f"{rent_text}，超出预算 {_fmt(limit)} 万元")
    parts = (industry, area, capacity, floor, budget)
    return Match(c, sum(p.points for p in parts), parts)


def rank(needs: Needs, candidates: Iterable[Candidate],
         industry_label: Mapping[str, str] | None = None) -> Ranking:
    if needs.area_m2 <= 0:
        raise ValueError("the area needed must be positive")
    matches, rejected = [], []
    for c in candidates:
        problems = hard_checks(needs, c)
        if problems:
            rejected.append(Rejected(c, tuple(problems)))
        else:
            matches.append(score(needs, c, industry_label))
    matches.sort(key=lambda m: (-m.score, abs(m.candidate.area_m2 - needs.area_m2),
                                m.candidate.park, m.candidate.building, m.candidate.unit))
    rejected.sort(key=lambda r: (r.candidate.park, r.candidate.building, r.candidate.unit))
    return Ranking(tuple(matches), tuple(rejected))


# --------------------------------------------------------------------------- homogeneity

@dataclass(frozen=True)
class ParkSummary:
    code: str
    name: str
    stage: str  # planned | construction | operating
    location: str
    lead_industry: str
    owner_group: str
    factory_area_m2: Decimal


@dataclass(frozen=True)
class Homogeneity:
    """Parks built, under construction or planned in the same place with the same lead industry.
    `district_share` is that industry's share of the district's factory floor area (context for
    the reviewer: 智能制造 and 新材料 already hold 81 %); `leads_no_park` marks an industry the
    reply calls under-represented (医药制造, 新型电子元件), which the check encourages."""

    location: str
    lead_industry: str
    duplicates: tuple[ParkSummary, ...]
    district_share: Decimal
    leads_no_park: bool

    @property
    def flagged(self) -> bool:
        return bool(self.duplicates)

    def evidence(self, industry_label: Mapping[str, str] | None = None,
                 stage_label: Mapping[str, str] | None = None) -> list[str]:
        ind = (industry_label or {}).get(self.lead_industry, self.lead_industry)
        stages = stage_label or {"operating": "已建成运营", "construction": "在建", "planned": "拟建"}
        return [f"{p.code} {p.name}（{stages.get(p.stage, p.stage)}，{p.location}，主导产业{ind}，"
                f"厂房 {_fmt(p.factory_area_m2)} m²）" for p in self.duplicates]


def homogeneity(location: str, lead_industry: str, parks: Iterable[ParkSummary],
                exclude: str | None = None) -> Homogeneity:
    """`exclude`: the code of the park under review itself (a planned park in the portfolio)."""
    parks = list(parks)
    order = {"operating": 0, "construction": 1, "planned": 2}
    duplicates = tuple(sorted(
        (p for p in parks if p.code != exclude and p.location == location
         and p.lead_industry == lead_industry),
        key=lambda p: (order.get(p.stage, 9), p.code)))
    total = sum((p.factory_area_m2 for p in parks), Decimal(0))
    same = sum((p.factory_area_m2 for p in parks if p.lead_industry == lead_industry), Decimal(0))
    return Homogeneity(location, lead_industry, duplicates, same / total if total else Decimal(0),
                       leads_no_park=not any(p.lead_industry == lead_industry for p in parks
                                             if p.code != exclude))
