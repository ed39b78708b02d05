"""`flask demo load` (what `make run` does) on a fresh database: the demo applications run through
the real service, the admission ends with unit 8-102 let in the portfolio, every application that
names a park carries its code, and the monitoring evaluation raises the warnings the dashboard
shows, from the portfolio's own indicators. Loading twice changes nothing. The demo applications
carry real attachments (sample PDFs stored with the start event), and the demo has someone acting
in two departments."""
from __future__ import annotations

from sqlalchemy import func, select

from tests.cli.runner import ROOT, Cli
from workflow_app import demo
from workflow_app.models import (Attachment, Building, Enterprise, Park, ParkWarning, ProcessInstance,
                                 TrailEvent, Unit, User)
from workflow_app.services import trail
from workflow_app.services.monitoring import dashboard_figures


def test_demo_load_drives_the_applications_and_the_monitoring(db, database_url):
    cli = Cli(database_url, ROOT / "process_defs")
    try:
        assert cli("defs", "sync").exit_code == 0
        first = cli("demo", "load")
        assert first.exit_code == 0, first.output
        assert "4 new applications" in first.output and "2026-10 3 orange" in first.output
        assert "(15 warnings newly raised)" in first.output  # 3 parks x 5 periods
        svc = cli.app.extensions["parkflow"]
        with svc.db.read() as s:
            cases = {i.title: i for i in s.scalars(select(ProcessInstance))}
            admission = cases[demo.ADMISSION["enterprise_name"]]
            assert (admission.status, admission.subject_ref) == ("approved", "ZH-P01")
            assert cases[demo.LIFECYCLE_P07["park_name"]].subject_ref == "ZH-P07"
            assert cases[demo.INVESTMENT_ZHENTOU["project_name"]].subject_ref == "ZH-P01"
            assert cases[demo.INVESTMENT_HAIJIANG["project_name"]].subject_ref is None  # names no park
            unit, tenant = s.execute(select(Unit, Enterprise.credit_code).join(Enterprise, Enterprise.id == Unit.tenant_id)
                                     .join(Building).join(Park).where(Park.code == "ZH-P01", Unit.number == "8-102")).one()
            assert (unit.status, tenant) == ("let", demo.ADMISSION["credit_code"])
            figures = dashboard_figures(s)
            assert figures.warnings_by_grade == {"red": 0, "orange": 3, "yellow": 0}
            history = s.execute(select(ParkWarning.period, ParkWarning.status, func.count())
                                .group_by(ParkWarning.period, ParkWarning.status)
                                .order_by(ParkWarning.period)).all()
            # each period was evaluated in turn; the latest carries the warnings, earlier ones closed
            assert [row for row in history if row[1] == "open"] == [("2026-10", "open", 3)]
            assert {period for period, _status, _n in history} == {"2025Q4", "2026Q1", "2026Q2", "2026Q3", "2026-10"}
            events = s.scalar(select(func.count()).select_from(TrailEvent))
            assert trail.verify(s).ok
        again = cli("demo", "load")
        assert again.exit_code == 0 and "0 new applications" in again.output
        assert "(0 warnings newly raised)" in again.output
        with svc.db.read() as s:
            assert s.scalar(select(func.count()).select_from(TrailEvent)) == events
    finally:
        cli.close()


def test_demo_applications_have_attached_files(db, database_url):
    cli = Cli(database_url, ROOT / "process_defs")
    try:
        assert cli("defs", "sync").exit_code == 0
        loaded = cli("demo", "load")
        assert loaded.exit_code == 0, loaded.output
        svc = cli.app.extensions["parkflow"]
        with svc.db.read() as s:
            rows = s.scalars(select(Attachment)).all()
            assert {r.field for r in rows} >= {"design_file", "attraction_plan_file", "proposal_file"}
            for r in rows:
                assert r.content.startswith(b"%PDF-") and r.media_type == "application/pdf"
                form = s.get(ProcessInstance, r.instance_id).form_data
                assert form[r.field] == "sha256:" + r.sha256
                event = s.get(TrailEvent, r.trail_event_id)
                assert event.action == "start" and r.sha256 in {a["sha256"] for a in event.details["attachments"]}
            two = s.scalar(select(User).where(User.username == "fg_jx"))
            assert {m.department_code for m in two.memberships} == {"dev_reform", "econ_it"}
    finally:
        cli.close()
