"""The park portfolio as data: the format of `portfolio_data.yaml`, loading it with
`FILE:LINE: KEY: message` errors, and the summary figures the dashboard and the tests use —
totals by stage; shares of the factory floor area by location, lead industry and builder group;
occupancy by floor of the operating parks.

Pure: no Flask, no database (`portfolio_store` puts a loaded portfolio into the database).
Shares are exact `Decimal` fractions; `whole_percent` rounds half-up only for display, the way
the reply states its figures ("25%").
"""
from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workflow_app.engine import safe_yaml
from workflow_app.engine.errors import DefinitionError, Problem
from workflow_app.engine.organisation import Organisation

DEFAULT_DATA = Path(__file__).with_name("portfolio_data.yaml")
BUILDER_KINDS = ("soe_group", "subsidiary")


class ParkStage(str, Enum):
    """Lifecycle stage of a park as the reply counts them (拟建 / 在建 / 已建成运营)."""

    operating = "operating"
    construction = "construction"
    planned = "planned"

    @property
    def label_zh(self) -> str:
        return {"operating": "已建成运营", "construction": "在建", "planned": "拟建"}[self.value]


class UnitStatus(str, Enum):
    vacant = "vacant"
    let = "let"    # 出租: the tenant occupies it
    sold = "sold"  # 分割销售: the owner occupies it

    @property
    def label_zh(self) -> str:
        return {"vacant": "空置", "let": "出租", "sold": "已售"}[self.value]

    @property
    def occupied(self) -> bool:
        return self is not UnitStatus.vacant


Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
ParkCode = Annotated[str, Field(pattern=r"^[A-Z]{2}-[A-Z0-9]{2,12}$")]
CreditCode = Annotated[str, Field(pattern=r"^[0-9A-Z]{18}$", description="统一社会信用代码")]
Period = Annotated[str, Field(pattern=r"^\d{4}(Q[1-4]|-(0[1-9]|1[0-2]))$",
                              description='"2026Q3" (quarter) or "2026-10" (month)')]
Area = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Ratio = Annotated[Decimal, Field(ge=0, le=1, max_digits=5, decimal_places=4)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Strict):
    code: Code
    zh: Name
    en: str = Field(default="", max_length=200)


class Reported(_Strict):
    """Outlook figures the reply states for when all parks are built."""

    enterprises: int = Field(ge=0)
    tax_wan_per_year: Money
    jobs: int = Field(ge=0)
    built_soe_parks: int = Field(ge=0)


class UnitDef(_Strict):
    number: str = Field(min_length=1, max_length=20)
    floor: int = Field(ge=1, le=60)
    area_m2: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
    floor_load_kn_m2: Annotated[Decimal, Field(gt=0, max_digits=6, decimal_places=2)]
    ceiling_height_m: Annotated[Decimal, Field(gt=0, max_digits=5, decimal_places=2)]
    status: UnitStatus
    tenant: CreditCode | None = None
    since: date | None = Field(default=None, description="lease start, or date of sale")
    until: date | None = Field(default=None, description="lease end (let units only)")

    @model_validator(mode="after")
    def _status_fits(self) -> "UnitDef":
        if self.status is UnitStatus.vacant:
            if self.tenant or self.since or self.until:
                raise ValueError("a vacant unit has no tenant, since or until")
        else:
            if not self.tenant or not self.since:
                raise ValueError(f"a {self.status.value} unit needs 'tenant' and 'since'")
            if self.status is UnitStatus.sold and self.until:
                raise ValueError("a sold unit has no 'until'")
            if self.until and self.until < self.since:
                raise ValueError("'until' is before 'since'")
        return self


class BuildingDef(_Strict):
    name: Name
    floors: int = Field(ge=1, le=60)
    units: list[UnitDef] = Field(default_factory=list)


class ParkDef(_Strict):
    code: ParkCode
    name: Name
    stage: ParkStage
    owner_group: Code = Field(description="builder: department code or one of other_builders")
    location: Name = Field(description="街道 / 镇")
    lead_industry: Code
    land_mu: Area = Decimal(0)
    floor_area_m2: Area
    factory_area_m2: Area
    opened_year: int | None = Field(default=None, ge=1990, le=2100)
    notes: str = Field(default="", max_length=2000)
    illustrative: bool = False
    buildings: list[BuildingDef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _opened_only_if_operating(self) -> "ParkDef":
        if self.opened_year is not None and self.stage is not ParkStage.operating:
            raise ValueError("only an operating park has an 'opened_year'")
        return self


class EnterpriseDef(_Strict):
    credit_code: CreditCode
    name: Name
    industry: Code
    jobs: int = Field(default=0, ge=0)
    illustrative: bool = False


class IndicatorDef(_Strict):
    park: ParkCode
    period: Period
    occupancy_rate: Ratio
    occupancy_by_floor: dict[int, Ratio] = Field(default_factory=dict)
    tax_wan: Money = Decimal(0)
    output_wan: Money = Decimal(0)
    jobs: int = Field(default=0, ge=0)
    enterprises: int = Field(default=0, ge=0)
    lead_chain_share: Ratio = Decimal(0)

    @model_validator(mode="after")
    def _floors_positive(self) -> "IndicatorDef":
        if any(f < 1 for f in self.occupancy_by_floor):
            raise ValueError("occupancy_by_floor keys are floors, 1 and up")
        return self

    @property
    def period_end(self) -> date:
        return period_end(self.period)


class PortfolioDef(_Strict):
    version: int = Field(ge=1)
    source: str = ""
    reported: Reported | None = None
    locations: list[Name] = Field(min_length=1)
    industries: list[Label] = Field(min_length=1)
    other_builders: list[Label] = Field(default_factory=list)
    parks: list[ParkDef]
    enterprises: list[EnterpriseDef] = Field(default_factory=list)
    indicators: list[IndicatorDef] = Field(default_factory=list)

    def park(self, code: str) -> ParkDef:
        return next(p for p in self.parks if p.code == code)

    def industry_label(self, code: str) -> str:
        return next((i.zh for i in self.industries if i.code == code), code)


# --------------------------------------------------------------------------- loading

def load_file(path: str | Path = DEFAULT_DATA, org: Organisation | None = None) -> PortfolioDef:
    path = Path(path)
    return load_text(path.read_bytes(), str(path), org)


def load_text(text: str | bytes, source: str = "<string>",
              org: Organisation | None = None) -> PortfolioDef:
    """Parse and validate; raise DefinitionError listing every problem with its line.

    With `org`, each park's `owner_group` must be an SOE group or subsidiary there, or one of the
    file's `other_builders`."""
    located = safe_yaml.load(text, source)
    try:
        parsed = PortfolioDef.model_validate(located.data)
    except ValidationError as exc:
        raise DefinitionError([_pydantic_problem(located, e) for e in exc.errors()]) from None
    problems = _cross_check(parsed, located, org)
    if problems:
        raise DefinitionError(problems)
    return parsed


def _pydantic_problem(located: safe_yaml.Located, err: dict) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    return Problem(located.source, located.line_of(loc), safe_yaml.key_path(loc), message)


def _cross_check(p: PortfolioDef, located: safe_yaml.Located,
                 org: Organisation | None) -> list[Problem]:
    problems: list[Problem] = []

    def problem(path: tuple, message: str) -> None:
        problems.append(Problem(located.source, located.line_of(path),
                                safe_yaml.key_path(path), message))

    def unique(items: Iterable, key, path_of, what: str) -> set:
        seen: set = set()
        for i, item in enumerate(items):
            k = key(item)
            if k in seen:
                problem(path_of(i), f"duplicate {what} {k!r}")
            seen.add(k)
        return seen

    industries = unique(p.industries, lambda x: x.code, lambda i: ("industries", i, "code"), "industry")
    others = unique(p.other_builders, lambda x: x.code, lambda i: ("other_builders", i, "code"),
                    "builder")
    locations = set(p.locations)
    builders = None
    if org is not None:
        builders = others | {c for c, d in org.departments.items() if d.kind in BUILDER_KINDS}
        for i, b in enumerate(p.other_builders):
            if b.code in org.departments:
                problem(("other_builders", i, "code"), f"{b.code!r} is already a department")
    credit_codes = unique(p.enterprises, lambda e: e.credit_code,
                          lambda i: ("enterprises", i, "credit_code"), "credit code")
    for i, e in enumerate(p.enterprises):
        if e.industry not in industries:
            problem(("enterprises", i, "industry"), f"unknown industry {e.industry!r}")
    park_codes = unique(p.parks, lambda x: x.code, lambda i: ("parks", i, "code"), "park")
    for i, park in enumerate(p.parks):
        at = ("parks", i)
        if park.location not in locations:
            problem(at + ("location",), f"unknown location {park.location!r}")
        if park.lead_industry not in industries:
            problem(at + ("lead_industry",), f"unknown industry {park.lead_industry!r}")
        if builders is not None and park.owner_group not in builders:
            problem(at + ("owner_group",), f"unknown builder {park.owner_group!r}")
        unique(park.buildings, lambda b: b.name, lambda j: at + ("buildings", j, "name"), "building")
        unit_area = Decimal(0)
        for j, b in enumerate(park.buildings):
            unique(b.units, lambda u: u.number,
                   lambda k: at + ("buildings", j, "units", k, "number"), "unit")
            for k, u in enumerate(b.units):
                u_at = at + ("buildings", j, "units", k)
                unit_area += u.area_m2
                if u.floor > b.floors:
                    problem(u_at + ("floor",), f"floor {u.floor} above the building's {b.floors}")
                if u.tenant and u.tenant not in credit_codes:
                    problem(u_at + ("tenant",), f"unknown enterprise {u.tenant!r}")
        # the units are the factory space: their areas must add up to the park's figure
        if park.buildings and unit_area != park.factory_area_m2:
            problem(at + ("factory_area_m2",),
                    f"units add up to {unit_area} m², not {park.factory_area_m2}")
    unique(p.indicators, lambda x: (x.park, x.period),
           lambda i: ("indicators", i, "period"), "indicator (park, period)")
    for i, ind in enumerate(p.indicators):
        if ind.park not in park_codes:
            problem(("indicators", i, "park"), f"unknown park {ind.park!r}")
    return problems


def period_end(period: str) -> date:
    """Last day of "2026Q3" or "2026-10"."""
    year = int(period[:4])
    month = int(period[5]) * 3 if period[4] == "Q" else int(period[5:7])
    return date(year, month, calendar.monthrange(year, month)[1])


# --------------------------------------------------------------------------- summaries

@dataclass(frozen=True)
class AreaTotals:
    parks: int
    land_mu: Decimal
    floor_area_m2: Decimal
    factory_area_m2: Decimal


def totals(parks: Iterable[ParkDef]) -> AreaTotals:
    parks = list(parks)
    return AreaTotals(len(parks), sum((p.land_mu for p in parks), Decimal(0)),
                      sum((p.floor_area_m2 for p in parks), Decimal(0)),
                      sum((p.factory_area_m2 for p in parks), Decimal(0)))


def totals_by_stage(p: PortfolioDef) -> dict[ParkStage, AreaTotals]:
    """Every stage (operating, construction, planned), also those with no park."""
    return {s: totals(x for x in p.parks if x.stage is s) for s in ParkStage}


@dataclass(frozen=True)
class Share:
    key: str
    label: str
    area_m2: Decimal
    share: Decimal  # exact fraction of the portfolio's factory floor area

    @property
    def percent(self) -> int:
        return whole_percent(self.share)


def whole_percent(fraction: Decimal) -> int:
    return int((fraction * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


ShareBy = Literal["location", "lead_industry", "builder_group"]


def builder_group(code: str, org: Organisation | None) -> str:
    """The SOE group a builder belongs to (a subsidiary counts for its group)."""
    return org.group_of(code) if org is not None and code in org.departments else code


def builder_label(p: PortfolioDef, code: str, org: Organisation | None) -> str:
    if org is not None and code in org.departments:
        return org.departments[code].name.zh
    return next((b.zh for b in p.other_builders if b.code == code), code)


def factory_shares(p: PortfolioDef, by: ShareBy, org: Organisation | None = None) -> list[Share]:
    """Shares of the factory floor area, largest first (ties by key)."""
    areas: dict[str, Decimal] = defaultdict(Decimal)
    for park in p.parks:
        key = {"location": park.location, "lead_industry": park.lead_industry,
               "builder_group": builder_group(park.owner_group, org)}[by]
        areas[key] += park.factory_area_m2
    total = sum(areas.values(), Decimal(0))

    def label(key: str) -> str:
        if by == "lead_industry":
            return p.industry_label(key)
        return builder_label(p, key, org) if by == "builder_group" else key

    return [Share(k, label(k), a, a / total if total else Decimal(0))
            for k, a in sorted(areas.items(), key=lambda kv: (-kv[1], kv[0]))]


def combined_share(shares: Iterable[Share], keys: Iterable[str]) -> Decimal:
    keys = set(keys)
    return sum((s.share for s in shares if s.key in keys), Decimal(0))


@dataclass(frozen=True)
class FloorOccupancy:
    floor: int  # for ParkOccupancy.upper: 2, meaning "2F and above"
    area_m2: Decimal
    occupied_m2: Decimal

    @property
    def rate(self) -> Decimal:
        return self.occupied_m2 / self.area_m2 if self.area_m2 else Decimal(0)


@dataclass(frozen=True)
class ParkOccupancy:
    """入驻率 by area (let + sold units count as occupied), per floor and overall."""

    park: str
    name: str
    floors: tuple[FloorOccupancy, ...]

    @property
    def area_m2(self) -> Decimal:
        return sum((f.area_m2 for f in self.floors), Decimal(0))

    @property
    def occupied_m2(self) -> Decimal:
        return sum((f.occupied_m2 for f in self.floors), Decimal(0))

    @property
    def rate(self) -> Decimal:
        return self.occupied_m2 / self.area_m2 if self.area_m2 else Decimal(0)

    @property
    def ground(self) -> FloorOccupancy:
        return next((f for f in self.floors if f.floor == 1), FloorOccupancy(1, Decimal(0), Decimal(0)))

    @property
    def upper(self) -> FloorOccupancy:
        """All floors from 2F up taken together (the reply: 二楼及以上空置现象严重)."""
        up = [f for f in self.floors if f.floor >= 2]
        return FloorOccupancy(2, sum((f.area_m2 for f in up), Decimal(0)),
                              sum((f.occupied_m2 for f in up), Decimal(0)))


def _occupancy(code: str, name: str, units: Iterable[UnitDef]) -> ParkOccupancy:
    area: dict[int, Decimal] = defaultdict(Decimal)
    occupied: dict[int, Decimal] = defaultdict(Decimal)
    for u in units:
        area[u.floor] += u.area_m2
        if u.status.occupied:
            occupied[u.floor] += u.area_m2
    return ParkOccupancy(code, name, tuple(FloorOccupancy(f, area[f], occupied[f])
                                           for f in sorted(area)))


def occupancy_by_floor(p: PortfolioDef) -> list[ParkOccupancy]:
    """Occupancy per floor of each operating park that has units, in file order."""
    return [_occupancy(park.code, park.name, (u for b in park.buildings for u in b.units))
            for park in p.parks if park.stage is ParkStage.operating and park.buildings]


def combined_occupancy(p: PortfolioDef) -> ParkOccupancy:
    """All operating parks taken together (code "*")."""
    return _occupancy("*", "已建成运营园区合计", (
        u for park in p.parks if park.stage is ParkStage.operating
        for b in park.buildings for u in b.units))


def latest_indicators(p: PortfolioDef) -> dict[str, IndicatorDef]:
    """The most recent indicator row of each park (quarters and months ordered by end date)."""
    latest: dict[str, IndicatorDef] = {}
    for ind in p.indicators:
        if ind.park not in latest or ind.period_end > latest[ind.park].period_end:
            latest[ind.park] = ind
    return latest


def consistency_notes(p: PortfolioDef) -> list[str]:
    """Things that are odd but allowed, for the dashboard's data notes (not errors)."""
    notes = [f"{park.code} {park.name}: 厂房面积 {park.factory_area_m2} m² > 建筑面积 "
             f"{park.floor_area_m2} m²" for park in p.parks
             if park.factory_area_m2 > park.floor_area_m2]
    everything = totals(p.parks)
    if everything.factory_area_m2 > everything.floor_area_m2:
        notes.append(f"厂房面积合计 {everything.factory_area_m2} m² > 建筑面积合计 "
                     f"{everything.floor_area_m2} m² (答复的分布口径与总量口径不一致)")
    return notes
