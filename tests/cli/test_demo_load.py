"""`flask demo load`: the demo applications carry real attachments (sample PDFs stored with the
start event), and the demo has someone acting in two departments."""
from __future__ import annotations

from sqlalchemy import select

from tests.cli.runner import ROOT, Cli
from workflow_app.models import Attachment, ProcessInstance, TrailEvent, User


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
