"""The processes and the portfolio on a real database: an admission approved records the tenancy
(unit let to the enterprise), its owner group comes from the park matched, unknown or taken units
and non-operating parks are refused; a rectification ended approved closes its warning; every
application naming a park gets the park's code as subject_ref (start, sub-process, admission)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from tests.services.support import portfolio_env
from workflow_app import demo
from workflow_app.engine.errors import InvalidAction
from workflow_app.engine.runtime import Request
from workflow_app.models import (Building, Enterprise, Park, ParkIndicator, ParkWarning,
                                 ProcessInstance, Task, Tenancy, TrailEvent, Unit)
from workflow_app.services import trail
from workflow_app.services.monitoring import RECTIFICATION, evaluate_period

NOW = datetime(2026, 11, 5, 2, 0, tzinfo=timezone.utc)
# the demo organisation's people (every body the shipped processes route to) and an administrator
PEOPLE = {**{p.username: list(p.memberships) for p in demo.PEOPLE if not p.admin_role}, "sysadmin": []}


@pytest.fixture
def env(db, clock):
    return portfolio_env(db, clock, NOW, PEOPLE)


def start(env, who, key, data, department):
    with env.db.write() as s:
        return env.workflow.start(s, env.people[who], key, data, department=department).instance_id


def act(env, who, iid, action, **kw):
    with env.db.write() as s:
        task = s.scalars(select(Task.id).where(
            Task.instance_id == iid, Task.status == "open",
            (Task.assignee_id == env.people[who]) | Task.assignee_id.is_(None)).order_by(Task.id)).first()
        return env.workflow.act(s, env.people[who], iid, Request(action, task, **kw))


def instance(env, iid) -> ProcessInstance:
    with env.db.read() as s:
        return s.get(ProcessInstance, iid)


def unit_row(env, park, number):
    with env.db.read() as s:
        return s.execute(select(Unit, Enterprise.credit_code).outerjoin(Enterprise, Enterprise.id == Unit.tenant_id)
                         .join(Building).join(Park).where(Park.code == park, Unit.number == number)).one()


def admitted_to_offer(env, data=None):
    iid = start(env, "hj_submit", "enterprise_admission", data or demo.ADMISSION, "haijiang")
    act(env, "tc_review", iid, "approve", data=demo.ADMISSION_MATCH)
    return iid


# --------------------------------------------------------------------------- admission
def test_admission_approved_records_the_tenancy_in_the_portfolio(env):
    iid = admitted_to_offer(env)
    case = instance(env, iid)
    # the owner group was taken from the park matched (新材料产业园 is 海江公司's), not typed
    assert case.form_data["owner_group"] == "haijiang" and case.subject_ref == "ZH-P01"
    act(env, "hj_ops", iid, "approve", data={"offered_units": "8-102", "rent_yuan_m2_day": "0.8"})
    case = instance(env, iid)
    assert case.form_data["offered_area_m2"] == "1500" and case.form_data["offered_floor"] == 1
    assert unit_row(env, "ZH-P01", "8-102")[0].status == "vacant"  # nothing before the approval
    act(env, "hj_head", iid, "approve", opinion="同意入驻。")
    assert instance(env, iid).status == "approved"
    unit, tenant = unit_row(env, "ZH-P01", "8-102")
    assert (unit.status, tenant) == ("let", demo.ADMISSION["credit_code"])
    with env.db.read() as s:
        firm = s.scalar(select(Enterprise).where(Enterprise.credit_code == demo.ADMISSION["credit_code"]))
        assert (firm.name, firm.industry, firm.jobs, firm.illustrative) == (
            demo.ADMISSION["enterprise_name"], "new_materials", 60, True)
        [lease] = s.scalars(select(Tenancy).where(Tenancy.unit_id == unit.id)).all()
        assert (lease.enterprise_id, str(lease.start_date), lease.end_date) == (firm.id, "2026-11-05", None)
        [event] = s.scalars(select(TrailEvent).where(TrailEvent.action == "park_tenancy_recorded")).all()
        assert event.details["units"] == ["8-102"] and event.details["instance"] == iid
        assert trail.verify(s).ok


def test_a_typed_owner_group_is_overridden_by_the_parks(env):
    iid = start(env, "hj_submit", "enterprise_admission", demo.ADMISSION, "haijiang")
    act(env, "tc_review", iid, "approve", data={"park_name": "招宝智造谷", "owner_group": "haijiang"})
    assert instance(env, iid).form_data["owner_group"] == "zhentou"  # 招宝智造谷 is 镇投's
    assert instance(env, iid).subject_ref == "ZH-P02"


@pytest.mark.parametrize("park, message", [
    ("招宝山智能制造小微园二期(示意)", "park ZH-P07 is not operating yet"),  # planned, not operating
    ("不存在的园区", "no park '不存在的园区' in the portfolio"),
])
def test_only_an_operating_park_of_the_portfolio_can_be_matched(env, park, message):
    iid = start(env, "hj_submit", "enterprise_admission", demo.ADMISSION, "haijiang")
    with pytest.raises(InvalidAction) as err:
        act(env, "tc_review", iid, "approve", data={"park_name": park})
    assert message in err.value.details["fields"]["park_name"]
    assert instance(env, iid).current_step == "industry_fit"


@pytest.mark.parametrize("offer, field, message", [
    ({"offered_units": "A1-101"}, "offered_units", "ZH-P01 has no unit A1-101"),
    ({"offered_units": "8-101"}, "offered_units", "not vacant: 8-101"),          # let in the portfolio
    ({"offered_units": "8-102", "offered_floor": 3}, "offered_floor", "the units offered are on floor 1"),
    ({"offered_units": "8-102、8-201", "offered_area_m2": "1500"}, "offered_area_m2", "the units offered add up to 3000 m²"),
])
def test_an_offer_must_name_vacant_units_of_the_park(env, offer, field, message):
    iid = admitted_to_offer(env)
    with pytest.raises(InvalidAction) as err:
        act(env, "hj_ops", iid, "approve", data=offer)
    assert message in err.value.details["fields"][field]
    assert instance(env, iid).current_step == "offer"


def test_approval_is_refused_when_the_unit_was_let_meanwhile(env):
    iid = admitted_to_offer(env)
    act(env, "hj_ops", iid, "approve", data={"offered_units": "8-102"})
    with env.db.write() as s:  # another firm got the unit first
        unit = s.scalar(select(Unit).join(Building).join(Park).where(Park.code == "ZH-P01", Unit.number == "8-102"))
        unit.status, unit.tenant_id = "let", s.scalar(select(Enterprise.id).limit(1))
    with pytest.raises(InvalidAction, match="cannot record the tenancy: not vacant: 8-102"):
        act(env, "hj_head", iid, "approve")
    assert instance(env, iid).status == "running"  # nothing of the approval was written


# --------------------------------------------------------------------------- subject_ref
def test_applications_naming_a_park_get_its_code(env):
    p07 = start(env, "zt_submit", "park_project_lifecycle", demo.LIFECYCLE_P07, "zhentou")
    inv = start(env, "zt_submit", "investment_review", demo.INVESTMENT_ZHENTOU, "zhentou")
    new = start(env, "zt_submit", "park_project_lifecycle",
                {**demo.LIFECYCLE_P07, "park_name": "台账外新项目"}, "zhentou")
    assert [instance(env, i).subject_ref for i in (p07, inv, new)] == ["ZH-P07", "ZH-P01", None]


def test_a_project_with_another_builder_than_the_portfolios_is_refused(env):
    with pytest.raises(InvalidAction) as err:
        start(env, "zt_submit", "park_project_lifecycle",
              {**demo.LIFECYCLE_P07, "park_name": "蛟川新材料小微园(示意)"}, "zhentou")  # 海江's
    assert err.value.details["fields"]["owner_group"] == "the portfolio names haijiang as the builder of ZH-P05"


# --------------------------------------------------------------------------- rectification
def red_case(env):
    with env.db.write() as s:
        row = s.scalar(select(ParkIndicator).join(Park).where(Park.code == "ZH-P03",
                                                              ParkIndicator.period == "2026Q3"))
        row.occupancy_rate, row.tax_wan = 0.45, 150
        evaluate_period(s, env.workflow, "2026Q3", NOW, env.people["sysadmin"])
        return s.scalar(select(ProcessInstance.id).where(ProcessInstance.process_key == RECTIFICATION))


def warning_p03(env):
    with env.db.read() as s:
        return s.scalar(select(ParkWarning).join(Park).where(Park.code == "ZH-P03",
                                                             ParkWarning.period == "2026Q3"))


def test_rectification_ended_approved_closes_its_warning(env):
    iid = red_case(env)
    assert warning_p03(env).status == "open"
    act(env, "zt_head", iid, "plan_submitted", data={"target_occupancy_pct": "75", "target_tax_per_mu_wan": "15"})
    act(env, "jx_review", iid, "approve")
    act(env, "gz_review", iid, "approve")
    act(env, "zt_ops", iid, "progress_reported",
        data={"current_occupancy_pct": "80", "current_tax_per_mu_wan": "16"})
    assert warning_p03(env).status == "open"  # still open while 经信局 evaluates
    act(env, "jx_head", iid, "recovered", opinion="入驻率与亩均税收均达到整改目标，销号。")
    assert instance(env, iid).status == "approved"
    w = warning_p03(env)
    assert (w.status, w.closed_reason, w.closed_at) == ("closed", "recovered", NOW)
    with env.db.read() as s:
        closed = s.scalars(select(TrailEvent).where(TrailEvent.action == "park_warning_closed")).all()
        assert [(e.details["park"], e.details["rectification"]) for e in closed] == [("ZH-P03", iid)]
        assert trail.verify(s).ok


def test_a_voided_rectification_leaves_the_warning_open(env):
    iid = red_case(env)
    with env.db.write() as s:
        from workflow_app.models import User
        admin = s.scalar(select(User.id).where(User.username == "sysadmin"))
        env.workflow.act(s, admin, iid, Request("void", opinion="重复立项"))
    assert instance(env, iid).status == "void" and warning_p03(env).status == "open"
