"""产业链精准匹配 and the homogeneity check over the database: reads the vacant units and the
parks, and hands them to `domain.matching`. Read-only; any session will do.

Process forms carry Chinese labels (`industry: 新材料`, `acceptable_floors: 仅限首层`); the
`*_from_form` helpers turn an enterprise_admission or park_project_lifecycle form into the
domain's inputs, with industry codes resolved through the portfolio catalogue.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.matching import (Candidate, Floors, Homogeneity, Needs, ParkSummary, Ranking,
                               homogeneity, rank)
from ..domain.portfolio import DEFAULT_DATA, PortfolioDef, load_file
from ..engine.errors import NotFound
from ..models import Building, Park, Unit


@lru_cache(maxsize=4)
def _default_catalogue(path: str) -> PortfolioDef:
    return load_file(path)


def catalogue_or_default(catalogue: PortfolioDef | None) -> PortfolioDef:
    return catalogue or _default_catalogue(str(DEFAULT_DATA))


def industry_labels(catalogue: PortfolioDef | None = None) -> dict[str, str]:
    return {i.code: i.zh for i in catalogue_or_default(catalogue).industries}


def industry_code(text: str, catalogue: PortfolioDef | None = None) -> str:
    """An industry code from a code or its Chinese label (as in the process forms)."""
    for i in catalogue_or_default(catalogue).industries:
        if text in (i.code, i.zh):
            return i.code
    raise ValueError(f"unknown industry {text!r}")


def vacant_candidates(session: Session) -> list[Candidate]:
    rows = session.execute(
        select(Park.code, Park.name, Park.lead_industry, Park.location, Building.name, Unit.number,
               Unit.floor, Unit.area_m2, Unit.floor_load_kn_m2, Unit.ceiling_height_m)
        .join(Building, Building.park_id == Park.id).join(Unit, Unit.building_id == Building.id)
        .where(Unit.status == "vacant").order_by(Park.code, Building.name, Unit.number))
    return [Candidate(*row) for row in rows]


def match_units(session: Session, needs: Needs, catalogue: PortfolioDef | None = None) -> Ranking:
    """Every vacant unit in every park, ranked for `needs` (ineligible ones with the reasons)."""
    return rank(needs, vacant_candidates(session), industry_labels(catalogue))


def _decimal(data: dict, name: str) -> Decimal | None:
    value = data.get(name)
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name}: not a number: {value!r}") from None


def needs_from_form(data: dict, catalogue: PortfolioDef | None = None) -> Needs:
    """An enterprise_admission application's needs (industry 其他 has no chain to match)."""
    area = _decimal(data, "area_needed_m2")
    if area is None:
        raise ValueError("area_needed_m2 is required")
    industry = str(data.get("industry") or "")
    try:
        code = industry_code(industry, catalogue)
    except ValueError:
        code = industry  # 其他: scored as unrelated to every park
    return Needs(industry=code, area_m2=area,
                 floors=Floors.from_label(str(data.get("acceptable_floors") or "不限")),
                 floor_load_kn_m2=_decimal(data, "floor_load_kn_m2"),
                 ceiling_height_m=_decimal(data, "ceiling_height_m"),
                 budget_wan_per_year=_decimal(data, "budget_wan_per_year"))


def park_summaries(session: Session) -> list[ParkSummary]:
    rows = session.execute(select(Park.code, Park.name, Park.stage, Park.location,
                                  Park.lead_industry, Park.owner_group, Park.factory_area_m2)
                           .order_by(Park.code))
    return [ParkSummary(*row) for row in rows]


def check_homogeneity(session: Session, location: str, lead_industry: str, *,
                      exclude: str | None = None,
                      catalogue: PortfolioDef | None = None) -> Homogeneity:
    """Parks in `location` already led by `lead_industry` (code or Chinese label)."""
    return homogeneity(location, industry_code(lead_industry, catalogue), park_summaries(session),
                       exclude=exclude)


def homogeneity_for_park(session: Session, code: str,
                         catalogue: PortfolioDef | None = None) -> Homogeneity:
    park = session.scalar(select(Park).where(Park.code == code))
    if park is None:
        raise NotFound(f"no park {code!r}")
    return check_homogeneity(session, park.location, park.lead_industry, exclude=code,
                             catalogue=catalogue)


def homogeneity_from_form(session: Session, data: dict,
                          catalogue: PortfolioDef | None = None) -> Homogeneity:
    """A park_project_lifecycle application (fields `location`, `lead_industry`)."""
    return check_homogeneity(session, str(data["location"]), str(data["lead_industry"]),
                             catalogue=catalogue)
