"""Monitoring, matching and the dashboard on a real database (SQLite, and PostgreSQL when
TEST_DATABASE_URL is set), with the shipped process definitions and the demo portfolio."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from config import TestConfig
from tests.factories import create_people
from tests.services.support import portfolio_env
from workflow_app.domain.monitoring import load_rules
from workflow_app.domain.portfolio import whole_percent
from workflow_app.engine.runtime import Request
from workflow_app.models import Park, ParkIndicator, ParkWarning, ProcessInstance, Task, TrailEvent
from workflow_app.services import trail
from workflow_app.services.matching import (homogeneity_for_park, homogeneity_from_form,
                                            match_units, needs_from_form)
from workflow_app.services.monitoring import RECTIFICATION, dashboard_figures, evaluate_period

NOW = datetime(2026, 11, 5, 2, 0, tzinfo=timezone.utc)
# The owner groups' people; Haijiang has no 项目填报人 until a test adds one.
PEOPLE = {
    "zt_submit": [("zhentou", "submitter")], "zt_head": [("zhentou", "head")],
    "zt_ops": [("zhentou", "operator")],
    "hj_head": [("haijiang", "head")], "hj_ops": [("haijiang", "operator")],
    "jx_review": [("econ_it", "reviewer")], "jx_head": [("econ_it", "head")],
    "gz_review": [("sasac", "reviewer")],
    "sysadmin": [],  # runs the evaluation
}
# 2026Q3 figures that make 浦成小微园 (85 mu, opened 2023) red: 45 % let, 2F+ 15 %, 7 万元/亩.
RED = dict(occupancy_rate=Decimal("0.45"), occupancy_by_floor={"1": 0.9, "2": 0.2, "3": 0.1, "4": 0.1},
           tax_wan=Decimal(150))


@pytest.fixture
def env(db, clock):
    return portfolio_env(db, clock, NOW, PEOPLE)


def evaluate(env, period):
    with env.db.write() as s:
        return evaluate_period(s, env.workflow, period, env.clock(), env.people["sysadmin"])


def set_figures(env, code, period, **values):
    with env.db.write() as s:
        row = s.scalar(select(ParkIndicator).join(Park).where(Park.code == code,
                                                              ParkIndicator.period == period))
        for name, value in values.items():
            setattr(row, name, value)


def warnings(env, code=None):
    with env.db.read() as s:
        query = select(ParkWarning, Park.code).join(Park).order_by(Park.code, ParkWarning.period_end)
        if code:
            query = query.where(Park.code == code)
        return [(w, c) for w, c in s.execute(query)]


def events(env, action=None):
    with env.db.read() as s:
        query = select(TrailEvent).where(TrailEvent.instance_id.is_(None)).order_by(TrailEvent.seq)
        rows = s.scalars(query).all()
    return [e for e in rows if action is None or e.action == action]


def rectifications(env):
    with env.db.read() as s:
        return s.scalars(select(ProcessInstance).where(ProcessInstance.process_key == RECTIFICATION)
                         .order_by(ProcessInstance.id)).all()


# --------------------------------------------------------------------------- evaluation

def test_demo_period_raises_orange_warnings_in_the_trail(env):
    result = evaluate(env, "2026-10")
    assert result.by_grade() == {"red": 0, "orange": 3, "yellow": 0}
    assert [(p.park, p.action) for p in result.parks] == [
        ("ZH-P01", "raised"), ("ZH-P02", "raised"), ("ZH-P03", "raised")]
    rows = warnings(env)
    assert [(c, w.grade, w.status) for w, c in rows] == [
        ("ZH-P01", "orange", "open"), ("ZH-P02", "orange", "open"), ("ZH-P03", "orange", "open")]
    first = rows[0][0]
    assert first.rules_hash == load_rules().content_hash and first.raised_at == NOW
    assert first.rule_ids[0] == "upper_floors_orange" and first.metrics["occupancy_pct"] == "69.32"
    raised = events(env, "park_warning_raised")
    assert [e.details["park"] for e in raised] == ["ZH-P01", "ZH-P02", "ZH-P03"]
    assert raised[0].actor_id == env.people["sysadmin"] and raised[0].details["grade"] == "orange"
    assert rectifications(env) == []
    # evaluating the same period again changes nothing
    before = len(events(env))
    again = evaluate(env, "2026-10")
    assert {p.action for p in again.parks} == {"unchanged"} and len(events(env)) == before
    with env.db.read() as s:
        assert trail.verify(s).ok


def test_red_warning_opens_exactly_one_rectification(env):
    set_figures(env, "ZH-P03", "2026Q3", **RED)
    result = evaluate(env, "2026Q3")
    p03 = next(p for p in result.parks if p.park == "ZH-P03")
    assert (p03.grade, p03.rectification_opened) == ("red", True)
    [case] = rectifications(env)
    assert (case.subject_ref, case.status, case.current_step) == ("ZH-P03", "running", "plan")
    assert case.submitter_id == env.people["zt_submit"] and case.submitter_department == "zhentou"
    assert case.form_data["warning_level"] == "红色" and case.form_data["warning_date"] == "2026-11-05"
    assert case.form_data["tax_per_mu_wan"] == "7.06" and case.form_data["occupancy_pct"] == "45.00"
    assert case.form_data["warning_reasons"].startswith("2026Q3：入驻率 45.00%，投运 3 年（按年份计）仍低于 50%")
    [warning] = [w for w, c in warnings(env, "ZH-P03")]
    assert warning.rectification_instance_id == case.id
    assert [e.details["instance"] for e in events(env, "park_rectification_opened")] == [case.id]

    before = len(events(env))
    again = evaluate(env, "2026Q3")
    assert len(rectifications(env)) == 1 and len(events(env)) == before
    assert next(p for p in again.parks if p.park == "ZH-P03").rectification_instance_id == case.id

    # the plan goes to the owner group's head, who is free to write it (not the submitter)
    with env.db.read() as s:
        [task] = s.scalars(select(Task).where(Task.instance_id == case.id, Task.status == "open")).all()
    assert (task.department, task.role, task.due_at is not None) == ("zhentou", "head", True)
    with env.db.write() as s:
        moved = env.workflow.act(s, env.people["zt_head"], case.id, Request(
            "plan_submitted", task.id, data={"target_occupancy_pct": "75", "target_tax_per_mu_wan": "15"}))
    assert moved.current_step == "review"


def test_red_in_the_next_period_keeps_the_one_running_case(env):
    set_figures(env, "ZH-P03", "2026Q3", **RED)
    set_figures(env, "ZH-P03", "2026-10", **RED)
    evaluate(env, "2026Q3")
    env.clock.now = NOW + timedelta(days=30)
    result = evaluate(env, "2026-10")
    [case] = rectifications(env)
    q3, oct_ = [w for w, c in warnings(env, "ZH-P03")]
    assert (q3.status, q3.closed_reason, q3.closed_by_period) == ("closed", "superseded", "2026-10")
    assert (oct_.status, oct_.grade, oct_.rectification_instance_id) == ("open", "red", case.id)
    assert not next(p for p in result.parks if p.park == "ZH-P03").rectification_opened
    assert [e.details["instance"] for e in events(env, "park_rectification_linked")] == [case.id]


def test_recovery_closes_the_red_warning(env):
    set_figures(env, "ZH-P03", "2026Q3", **RED)
    evaluate(env, "2026Q3")
    later = NOW + timedelta(days=30)
    env.clock.now = later
    result = evaluate(env, "2026-10")  # the demo figures: orange, no longer red
    assert ("ZH-P03", "2026Q3", "recovered") in result.closed
    q3, oct_ = [w for w, c in warnings(env, "ZH-P03")]
    assert (q3.status, q3.closed_reason, q3.closed_by_period, q3.closed_at) == (
        "closed", "recovered", "2026-10", later)
    assert (oct_.grade, oct_.status, oct_.rectification_instance_id) == ("orange", "open", None)
    closed = [e.details for e in events(env, "park_warning_closed")]
    assert {"park": "ZH-P03", "period": "2026Q3", "grade": "red", "reason": "recovered",
            "by_period": "2026-10"}.items() <= closed[-1].items()
    # the earlier orange warnings of the other parks are superseded by their 2026-10 ones
    assert {(d["park"], d["reason"]) for d in closed} == {
        ("ZH-P01", "superseded"), ("ZH-P02", "superseded"), ("ZH-P03", "recovered")}
    # closing the rectification case itself stays a decision of 经信局 in the process
    assert [c.status for c in rectifications(env)] == ["running"]
    with env.db.read() as s:
        assert trail.verify(s).ok


def test_a_group_without_submitter_gets_the_warning_and_a_retry(env):
    set_figures(env, "ZH-P01", "2026Q3", **RED)  # 新材料产业园 belongs to 海江公司
    result = evaluate(env, "2026Q3")
    p01 = next(p for p in result.parks if p.park == "ZH-P01")
    assert p01.grade == "red" and p01.rectification_instance_id is None
    assert "haijiang" in p01.note
    assert [e.details["park"] for e in events(env, "park_rectification_not_opened")] == ["ZH-P01"]
    before = len(events(env))
    assert evaluate(env, "2026Q3").parks[0].rectification_instance_id is None
    assert len(events(env)) == before  # a failed retry of an unchanged warning writes nothing
    with env.db.write() as s:
        create_people(s, {"hj_submit": [("haijiang", "submitter")]})
    again = evaluate(env, "2026Q3")
    p01 = next(p for p in again.parks if p.park == "ZH-P01")
    assert p01.rectification_opened and rectifications(env)[0].subject_ref == "ZH-P01"


def test_an_earlier_period_evaluated_late_does_not_open_a_case(env):
    evaluate(env, "2026-10")
    set_figures(env, "ZH-P03", "2026Q3", **RED)
    result = evaluate(env, "2026Q3")
    assert next(p for p in result.parks if p.park == "ZH-P03").grade == "red"
    q3 = next(w for w, c in warnings(env, "ZH-P03") if w.period == "2026Q3")
    assert (q3.status, q3.closed_reason, q3.closed_by_period) == ("closed", "superseded", "2026-10")
    assert rectifications(env) == []


def test_corrected_figures_revise_or_withdraw_the_warning(env):
    evaluate(env, "2026-10")
    set_figures(env, "ZH-P02", "2026-10", lead_chain_share=Decimal("0.35"))
    evaluate(env, "2026-10")
    p02 = next(w for w, c in warnings(env, "ZH-P02"))
    assert p02.status == "open" and "agglomeration_orange" in p02.rule_ids
    assert [e.details["park"] for e in events(env, "park_warning_revised")] == ["ZH-P02"]
    set_figures(env, "ZH-P02", "2026-10", occupancy_rate=Decimal("0.95"),
                occupancy_by_floor={"1": 1.0, "2": 0.9, "3": 0.9, "4": 0.9}, tax_wan=Decimal(400),
                output_wan=Decimal(5000), lead_chain_share=Decimal("0.7"))
    result = evaluate(env, "2026-10")
    assert next(p for p in result.parks if p.park == "ZH-P02").action == "closed"
    p02 = next(w for w, c in warnings(env, "ZH-P02"))
    assert (p02.status, p02.closed_reason) == ("closed", "revised")


@pytest.mark.parametrize("period", ["2026Q5", "2026-13", "26Q1", "2026-1", "drop table"])
def test_a_malformed_period_is_refused(env, period):
    with pytest.raises(ValueError, match="not a period"):
        evaluate(env, period)


def test_a_period_without_indicators_does_nothing(env):
    assert evaluate(env, "2024Q1").parks == [] and events(env, "park_warning_raised") == []


# --------------------------------------------------------------------------- dashboard

def test_dashboard_figures_reproduce_the_seed(env):
    set_figures(env, "ZH-P03", "2026-10", **RED)
    evaluate(env, "2026-10")
    with env.db.read() as s:
        figures = dashboard_figures(s, now=NOW + timedelta(days=40))
    assert figures.factory_area_m2 == Decimal(2_340_000)
    assert [(x.key, x.percent) for x in figures.by_location[:3]] == [
        ("招宝山街道", 25), ("蛟川街道", 23), ("澥浦镇", 17)]
    assert figures.by_location[0].area_m2 == Decimal(591_000)
    keys, share = figures.top(figures.by_lead_industry)
    assert set(keys) == {"smart_manufacturing", "new_materials"} and whole_percent(share) == 81
    assert {x.label for x in figures.by_lead_industry[:2]} == {"智能制造", "新材料"}
    keys, share = figures.top(figures.by_builder)
    assert set(keys) == {"zhentou", "haijiang"} and whole_percent(share) == 68
    assert {x.label for x in figures.by_builder[:2]} == {"镇投控股集团", "海江公司"}
    assert [o.park for o in figures.occupancy] == ["ZH-P01", "ZH-P02", "ZH-P03"]
    for o in figures.occupancy:  # ground floors full, 2F and above largely empty
        assert o.ground.rate > Decimal("0.95") and o.upper.rate < Decimal("0.40")
    assert figures.occupancy_all.occupied_m2 == Decimal(153_750)
    assert round(figures.occupancy_all.rate * 100) == 70
    assert figures.warnings_by_grade == {"red": 1, "orange": 2, "yellow": 0}
    # the rectification plan (15 working days) is overdue 40 days later: one for 镇投控股集团
    assert figures.overdue_by_department == (("zhentou", "镇投控股集团", 1),)
    with env.db.read() as s:
        assert dashboard_figures(s, now=NOW).overdue_by_department == ()
    data = json.loads(json.dumps(figures.as_json(), ensure_ascii=False))
    assert data["top_two"]["lead_industry"]["percent"] == 81 and data["top_two"]["builder"]["percent"] == 68
    assert data["by_location"][0]["percent"] == 25 and data["warnings_by_grade"]["red"] == 1


# --------------------------------------------------------------------------- matching

def test_matching_and_homogeneity_on_the_database(env):
    with env.db.read() as s:
        ranking = match_units(s, needs_from_form({
            "industry": "新材料", "area_needed_m2": "1500", "acceptable_floors": "仅限首层"}))
        planned = homogeneity_for_park(s, "ZH-P07")
        application = homogeneity_from_form(s, {"location": "蛟川街道", "lead_industry": "新材料"})
        pharma = homogeneity_from_form(s, {"location": "澥浦镇", "lead_industry": "医药制造"})
    first = ranking.matches[0].candidate
    assert (first.park_name, first.unit, first.floor) == ("新材料产业园", "8-102", 1)
    assert ranking.matches[0].reasons[0] == "园区主导产业（新材料）与企业产业一致（40/40）"
    assert [p.code for p in planned.duplicates] == ["ZH-P02", "ZH-P04"]
    assert [p.code for p in application.duplicates] == ["ZH-P01", "ZH-P05", "ZH-P09"]
    assert not pharma.flagged and pharma.leads_no_park


# --------------------------------------------------------------------------- command line

def test_command_line(env, tmp_path):
    from workflow_app import create_app

    config = type("Config", (TestConfig,), {"DATABASE_URL": env.db.url})
    app = create_app(config)
    runner = app.test_cli_runner()
    try:
        out = runner.invoke(args=["monitor", "evaluate", "2026-10", "--as", "sysadmin"])
        assert out.exit_code == 0, out.output
        assert "ZH-P01  orange  raised" in out.output and "red 0, orange 3, yellow 0" in out.output
        out = runner.invoke(args=["match", "--industry", "新材料", "--area", "1500",
                                  "--floors", "仅限首层", "--limit", "1"])
        assert out.exit_code == 0 and " 1. 100  ZH-P01 新材料产业园 8号厂房 8-102 1F" in out.output
        out = runner.invoke(args=["portfolio", "homogeneity", "ZH-P07"])
        assert "FLAG: 2 park(s)" in out.output and "ZH-P02 招宝智造谷" in out.output
        xlsx = tmp_path / "parks.xlsx"
        out = runner.invoke(args=["portfolio", "export", str(xlsx)])
        assert out.exit_code == 0 and xlsx.read_bytes()[:2] == b"PK"
        out = runner.invoke(args=["portfolio", "load"])
        assert out.exit_code == 0 and "created: nothing; updated: nothing" in out.output
        out = runner.invoke(args=["monitor", "evaluate", "2026Q9"])
        assert out.exit_code == 1 and "not a period" in out.output
        out = runner.invoke(args=["monitor", "rules"])
        assert out.exit_code == 0 and "红色  occupancy_red" in out.output and "rule(s) valid" in out.output
        broken = tmp_path / "rules.yaml"
        broken.write_text("version: 1\ntitle: {zh: x}\nrules:\n  - {id: a, indicator: t, grade: red,"
                          " when: 'eval(1)', reason: {zh: y}}\n", encoding="utf-8")
        out = runner.invoke(args=["monitor", "rules", str(broken)])
        assert out.exit_code == 1
        assert f"{broken}:4: rules[0].when: only these functions may be called" in out.output
    finally:
        app.extensions["parkflow"].db.dispose()
    with env.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ParkWarning)) == 3
