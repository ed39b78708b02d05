"""THE 4-SWEEPER TEST: four sweeper processes (multiprocessing, each with its own engine and
connection pool) sweep the same PostgreSQL database at the same moment over hundreds of due
items. Every reminder, escalation, deemed consent and e-mail must happen exactly once, and every
hash chain must still verify. PostgreSQL only (FOR UPDATE SKIP LOCKED is what is under test)."""
from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest
from sqlalchemy import func, select

from tests.services.clock_support import ROOT, clock_defs_dir, env, local  # noqa: F401
from tests.services.test_sla import Sink, free_port
from workflow_app.models import Notification, ProcessInstance, TrailEvent
from workflow_app.services.trail import verify

TASKS, JOINTS = 150, 150          # 300 instances: 750 rung firings + 300 deemed consents
SWEEPERS = 4
WHEN = local(2026, 3, 20, 9)      # everything of both routes is due by then


def run_sweeper(url: str, defs: str, when: str, smtp_port: int, barrier, results) -> None:
    """One sweeper process: its own Database (engine, pool), store and workflow."""
    from datetime import datetime

    from workflow_app.database import Database
    from workflow_app.engine.calendar import WorkingCalendar
    from workflow_app.services import sla
    from workflow_app.services.definitions import DefinitionStore
    from workflow_app.services.mailer import SmtpMailer
    from workflow_app.services.workflow import Workflow

    db = Database(url)
    try:
        workflow = Workflow(DefinitionStore(defs), WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars"))
        mailer = SmtpMailer("127.0.0.1", smtp_port, "parkflow@zhenhai.example")
        now = datetime.fromisoformat(when)
        barrier.wait(timeout=60)
        total: Counter = Counter()
        for _pass in range(3):  # several passes each: later ones must find nothing left
            total.update(sla.sweep(db, workflow, now, batch=10, mailer=mailer).as_dict())
        results.put(dict(total))
    except BaseException as exc:  # report instead of dying silently
        results.put({"error": repr(exc)})
        raise
    finally:
        db.dispose()


@pytest.fixture
def pg_env(env):
    if env.db.is_sqlite:
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test "
                    "(SQLite has one writer; FOR UPDATE SKIP LOCKED is what this test is about)")
    return env


def test_four_sweepers_fire_everything_exactly_once(pg_env, clock, clock_defs_dir):
    race(pg_env, clock, clock_defs_dir, TASKS, JOINTS)


def test_four_sweepers_on_sqlite_take_turns(env, clock, clock_defs_dir):
    """The same code on SQLite (one node): no SKIP LOCKED, BEGIN IMMEDIATE serialises the
    sweepers, and everything still happens exactly once."""
    if not env.db.is_sqlite:
        pytest.skip("the SQLite variant")
    race(env, clock, clock_defs_dir, 20, 20)


def race(env, clock, clock_defs_dir, tasks: int, joints: int) -> None:
    clock.now = local(2026, 3, 2, 9)
    for i in range(tasks):
        env.start("task", name=f"审查{i}")
    for i in range(joints):
        env.start("joint", name=f"并联{i}")
    mailed_before = env.count(Notification)
    sink = Sink()
    from aiosmtpd.controller import Controller
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(SWEEPERS), ctx.Queue()
    procs = [ctx.Process(target=run_sweeper, args=(env.db.url, str(clock_defs_dir), WHEN.isoformat(),
                                                   controller.port, barrier, results))
             for _ in range(SWEEPERS)]
    try:
        for p in procs:
            p.start()
        stats = [results.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(timeout=60)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        controller.stop()
    assert not [s for s in stats if "error" in s], stats
    assert all(p.exitcode == 0 for p in procs)
    total = sum((Counter(s) for s in stats), Counter())
    assert total["errors"] == 0
    # Exactly once, counted three ways: the sweepers' own counts, the trail, the tasks.
    assert (total["reminders"], total["escalations"], total["deemed_consents"]) == (
        tasks + joints, 3 * tasks, 2 * joints)
    with env.db.read() as s:
        per_task = Counter(s.execute(select(TrailEvent.task_id, TrailEvent.action, TrailEvent.details["level"].as_integer())
                                     .where(TrailEvent.action.in_(("remind", "escalate")))).all())
        assert per_task and set(per_task.values()) == {1}, "a rung fired twice"
        assert len(per_task) == 4 * tasks + joints
        consents = Counter(s.scalars(select(TrailEvent.task_id).where(TrailEvent.action == "deemed_consent")))
        assert len(consents) == 2 * joints and set(consents.values()) == {1}
        outcomes = Counter(s.scalars(select(ProcessInstance.status)))
        assert outcomes == Counter({"approved": joints, "running": tasks})
        # every notification (user, kind, instance, task) exists once, and was mailed once
        key = (Notification.user_id, Notification.kind, Notification.instance_id, Notification.task_id)
        dupes = s.execute(select(*key, func.count()).group_by(*key).having(func.count() > 1)).all()
        assert dupes == []
        mails = s.scalar(select(func.count()).select_from(Notification).where(Notification.email_to.is_not(None)))
        unsent = s.scalar(select(func.count()).select_from(Notification).where(Notification.emailed_at.is_(None)))
        assert unsent == 0 and mails > mailed_before
        result = verify(s)
        assert result.ok, result.broken
    assert total["emails_sent"] == mails == len(sink.messages)
    ids = Counter(m.content.split(b"Message-ID: ")[1].split(b"\r\n")[0] for m in sink.messages)
    assert set(ids.values()) == {1}, "an e-mail was sent twice"
