"""`flask sla sweep | worker` and `flask calendar load | show` through the real app factory. The
worker's SIGTERM handling is checked on a real process (no sleeping: the test waits for its
"started" line, signals it and waits for it to exit)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.cli.runner import ROOT, Cli
from tests.services.clock_support import PEOPLE, clock_defs_dir, day_end, local  # noqa: F401
from tests.factories import create_people
from workflow_app.models import Task, TrailEvent

CN_2027 = ROOT / "tests" / "fixtures" / "clock" / "cn_2027.yaml"


@pytest.fixture
def cli(db, database_url, clock_defs_dir, clock):
    runner = Cli(database_url, clock_defs_dir)
    svc = runner.app.extensions["parkflow"]
    svc.clock = svc.workflow.clock = clock
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        runner.people = create_people(s, PEOPLE)
    yield runner
    runner.close()


def start(cli, route: str) -> int:
    svc = cli.app.extensions["parkflow"]
    with svc.db.write() as s:
        return svc.workflow.start(s, cli.people["submitter"], "clock", {"name": "命令行", "route": route},
                                  department="zhentou").instance_id


def test_calendar_load_recomputes_and_show_says_where_a_year_comes_from(cli, clock):
    clock.now = local(2026, 12, 15, 10)
    iid = start(cli, "long")
    result = cli("calendar", "show", "2027")
    assert result.exit_code == 0 and "NOT LOADED" in result.stdout
    result = cli("calendar", "load", str(CN_2027), "--by", "区经信局 张三")
    assert result.exit_code == 0, result.output
    assert "2027: loaded" in result.stdout and "1 provisional due date(s) recomputed" in result.stdout
    svc = cli.app.extensions["parkflow"]
    with svc.db.read() as s:
        task = s.query(Task).filter_by(instance_id=iid, status="open").one()
        assert task.due_at == day_end(2027, 1, 27) and not task.due_provisional
        assert s.query(TrailEvent).filter_by(instance_id=iid, action="deadline_recomputed").count() == 1
    assert "unchanged" in cli("calendar", "load", str(CN_2027)).stdout
    shown = cli("calendar", "show", "2027").stdout
    assert "database (loaded" in shown and "区经信局 张三" in shown
    assert "2027-01-01" in shown and "2027-02-20" in shown
    spring = cli("calendar", "show", "2026").stdout
    assert "chinesecalendar" in spring and "2026-02-14" in spring and "2026-02-28" in spring


def test_calendar_load_refuses_a_bad_file_with_file_line_key(cli, tmp_path):
    bad = tmp_path / "cn_2027.yaml"
    bad.write_text("year: 2027\nsource: x\nholidays: [{name: 元旦, days: [2027-01-01]}]\nworkdays: [2027-01-04]\n",
                   encoding="utf-8")
    result = cli("calendar", "load", str(bad))
    assert result.exit_code == 1 and f"{bad}:4: workdays[0]: 2027-01-04 is a weekday" in result.output


def test_sla_sweep_and_one_worker_pass(cli, clock):
    clock.now = local(2026, 3, 2, 9)
    start(cli, "task")
    clock.now = local(2026, 3, 20)
    result = cli("sla", "sweep")
    assert result.exit_code == 0 and "reminders 1, escalations 3" in result.stdout
    assert "reminders 0, escalations 0" in cli("sla", "sweep").stdout
    result = cli("sla", "worker", "--passes", "1")
    assert result.exit_code == 0 and "stopped after 1 pass(es)" in result.stdout


def test_the_worker_stops_cleanly_on_sigterm(db, database_url, clock_defs_dir):
    if not db.is_sqlite:
        pytest.skip("one backend is enough for signal handling")
    env = dict(os.environ, DATABASE_URL=database_url, PROCESS_DEFS=str(clock_defs_dir),
               CALENDARS=str(ROOT / "process_defs" / "calendars"), PARKFLOW_CONFIG="dev")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "workflow_app:create_app",
                             "sla", "worker", "--interval", "3600"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()
        assert "sla worker started" in first, first
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "stopping after this pass" in out and "sla worker stopped after" in out
