"""The demo applications (workflow_app/demo.py) against the portfolio they talk about
(portfolio_data.yaml) and the seed's figures: the parks exist, places, owners, areas and
industries are the portfolio's, offered units exist and are vacant and fit the firm's needs,
and the people who act at an owner group's steps belong to that group."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from workflow_app import demo
from workflow_app.domain import portfolio as pf
from workflow_app.domain.matching import Floors
from workflow_app.engine.organisation import load_organisation

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def portfolio():
    return pf.load_file(org=load_organisation(ROOT / "process_defs" / "organisation.yaml"))


def by_name(portfolio, name):
    parks = [p for p in portfolio.parks if p.name == name]
    assert len(parks) == 1, f"no park named {name!r} in the portfolio"
    return parks[0]


def groups_of(username):
    person = next(p for p in demo.PEOPLE if p.username == username)
    return {d for d, _r in person.memberships}


def unit(park, number):
    found = [u for b in park.buildings for u in b.units if u.number == number]
    assert len(found) == 1, f"{park.code} has no unit {number}"
    return found[0]


def test_the_planning_application_repeats_the_planned_parks_figures(portfolio):
    data = demo.LIFECYCLE_P07
    park = by_name(portfolio, data["park_name"])
    assert (park.code, park.stage) == ("ZH-P07", pf.ParkStage.planned)
    assert (data["owner_group"], data["location"]) == (park.owner_group, park.location)
    assert data["lead_industry"] == portfolio.industry_label(park.lead_industry)
    assert Decimal(data["land_mu"]) == park.land_mu
    assert Decimal(data["floor_area_m2"]) == park.floor_area_m2
    assert Decimal(data["factory_area_m2"]) == park.factory_area_m2


def test_investments_name_the_park_and_its_place(portfolio):
    data = demo.INVESTMENT_ZHENTOU
    park = by_name(portfolio, data["park_name"])
    assert park.name == "新材料产业园" and data["location"] == park.location
    assert data["lead_industry"] == portfolio.industry_label(park.lead_industry)
    for data in (demo.INVESTMENT_ZHENTOU, demo.INVESTMENT_HAIJIANG):
        assert data["location"] in portfolio.locations


def test_the_admission_fits_the_park_and_its_vacant_unit(portfolio):
    app, offer = demo.ADMISSION, demo.ADMISSION_OFFER
    park = by_name(portfolio, demo.ADMISSION_MATCH["park_name"])
    assert park.code == demo.ADMISSION_PARK and park.stage is pf.ParkStage.operating
    assert app["preferred_park"] == park.name
    assert app["industry"] == portfolio.industry_label(park.lead_industry)
    # the owner group's steps are taken by that group's people (the park's owner in the portfolio)
    assert groups_of("hj_ops") == groups_of("hj_head") == {park.owner_group}
    units = [unit(park, n) for n in offer["offered_units"].split("、")]
    assert all(u.status is pf.UnitStatus.vacant for u in units)
    assert sum(u.area_m2 for u in units) == Decimal(offer["offered_area_m2"]) == Decimal(app["area_needed_m2"])
    assert {u.floor for u in units} == {offer["offered_floor"]}
    floors = Floors.from_label(app["acceptable_floors"])
    for u in units:
        assert floors.accepts(u.floor)
        assert u.floor_load_kn_m2 >= Decimal(app["floor_load_kn_m2"])
        assert u.ceiling_height_m >= Decimal(app["ceiling_height_m"])
    rent_wan = Decimal(offer["rent_yuan_m2_day"]) * Decimal(offer["offered_area_m2"]) * 365 / 10_000
    assert rent_wan <= Decimal(app["budget_wan_per_year"])
    # invented firms carry DEMO credit codes, as the portfolio's do; never a real-looking one
    assert app["credit_code"].startswith("DEMO") and len(app["credit_code"]) == 18
    assert app["credit_code"] not in {e.credit_code for e in portfolio.enterprises}


def test_demo_people_exist_for_every_group_that_owns_an_operating_park(portfolio):
    owners = {p.owner_group for p in portfolio.parks if p.stage is pf.ParkStage.operating}
    for group in owners:
        roles = {r for p in demo.PEOPLE for d, r in p.memberships if d == group}
        assert {"submitter", "head", "operator"} <= roles, group
