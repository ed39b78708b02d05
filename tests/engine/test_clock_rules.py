"""The clock's arithmetic (engine/clock.py) and the clock actions through the pure runtime: when
rungs fire, what a pause or an extension does to the due date and the ladder, days left."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.engine.directory import MemoryDirectory
from workflow_app.engine import clock
from workflow_app.engine.calendar import WorkingCalendar
from workflow_app.engine.errors import Conflict, Forbidden
from workflow_app.engine.loader import load_file
from workflow_app.engine.organisation import load_organisation
from workflow_app.engine.runtime import Request, Runtime
from workflow_app.engine.spec import DeadlineSpec, RungSpec
from workflow_app.engine.state import Origin, TaskState, TaskStatus

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars")
LADDER = DeadlineSpec(5, False, (RungSpec(-1, "assignee"), RungSpec(0, "head"), RungSpec(3, "coordinator")))


def at(y, m, d, h=9) -> datetime:
    return datetime(y, m, d, h, tzinfo=SH).astimezone(timezone.utc)


def end(y, m, d) -> datetime:
    nxt = date(y, m, d) + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=SH).astimezone(timezone.utc)


def fresh(days=5) -> TaskState:
    return TaskState(step="review", branch=None, round=1, seq=10, origin=Origin.queue,
                     status=TaskStatus.open, department="invest_promo", role="reviewer", deadline_days=days)


def test_rung_times_count_working_days_around_the_due_date():
    due = end(2026, 2, 13)  # Friday before the Spring Festival
    assert clock.rung_time(CAL, due, 0) == due
    assert clock.rung_time(CAL, due, -1) == end(2026, 2, 12)   # one working day left
    assert clock.rung_time(CAL, due, 1) == end(2026, 2, 14)    # Sat 14 Feb is a 调休 working day
    assert clock.rung_time(CAL, due, 2) == end(2026, 2, 24)    # then the festival is skipped
    assert clock.rung_time(CAL, end(2026, 2, 24), -1) == end(2026, 2, 14)


def test_start_skips_due_soon_reminders_that_would_come_before_the_task_opened():
    short = DeadlineSpec(1, False, (RungSpec(-3, "assignee"), RungSpec(0, "head")))
    task = fresh(days=1)
    clock.start(task, short, CAL, at(2026, 3, 2))
    assert task.due_at == end(2026, 3, 3) and task.escalation_level == 1  # "3 days left" is behind us
    assert task.next_reminder_at == end(2026, 3, 3)
    clock.start(task, short, CAL, at(2026, 3, 9))  # a second start never moves a running clock
    assert task.due_at == end(2026, 3, 3)


def test_due_rungs_and_days_left():
    task = fresh()
    clock.start(task, LADDER, CAL, at(2026, 3, 2))
    assert [i for i, _ in clock.due_rungs(task, LADDER, CAL, at(2026, 3, 6))] == []
    assert [i for i, _ in clock.due_rungs(task, LADDER, CAL, at(2026, 3, 10))] == [0, 1]
    assert clock.days_left(CAL, task, at(2026, 3, 2)).working_days == 5
    assert clock.days_left(CAL, task, at(2026, 3, 9)).working_days == 0
    late = clock.days_left(CAL, task, at(2026, 3, 11))
    assert late.overdue and late.working_days == -2


def test_pause_resume_and_shift_rearm_the_ladder():
    task = fresh()
    clock.start(task, LADDER, CAL, at(2026, 3, 2))
    task.escalation_level = 1  # the due-soon reminder fired at the end of Friday 6 March
    clock.pause(task, at(2026, 3, 6, 10))
    assert task.next_reminder_at is None and clock.due_rungs(task, LADDER, CAL, at(2026, 4, 1)) == []
    assert clock.resume(task, LADDER, CAL, at(2026, 3, 11)) == 3  # Mon 9, Tue 10, Wed 11 stopped
    assert task.due_at == end(2026, 3, 12) and task.escalation_level == 0  # the reminder re-armed
    assert task.next_reminder_at == end(2026, 3, 11)
    clock.shift(task, 0, LADDER, CAL, at(2026, 3, 13))  # nothing fired since: both rungs stay due
    assert task.escalation_level == 0 and len(clock.due_rungs(task, LADDER, CAL, at(2026, 3, 13))) == 2


def runtime_with_calendar():
    org = load_organisation(ROOT / "process_defs" / "organisation.yaml")
    spec = load_file(ROOT / "tests" / "fixtures" / "clock" / "clock.yaml", org)
    people = {1: [("zhentou", "submitter")], 2: [("invest_promo", "reviewer")],
              3: [("invest_promo", "head")], 4: [("econ_it", "head")]}
    directory = MemoryDirectory(people)
    return spec, directory, Runtime(directory, CAL, coordinators=("econ_it",))


def test_the_runtime_dates_tasks_when_they_open_and_counts_supplement_time():
    spec, directory, runtime = runtime_with_calendar()
    inst, effect = runtime.start(spec, {"name": "x", "route": "task"}, directory.actor(1), "zhentou", at(2026, 3, 2))
    [task] = effect.added
    task.id = 1
    assert task.due_at == end(2026, 3, 9)
    effect = runtime.act(inst, Request("supplement", 1, opinion="缺材料"), directory.actor(2), at(2026, 3, 3))
    [ask] = effect.added
    ask.id = 2
    assert task.paused_at == at(2026, 3, 3) and ask.origin is Origin.start and ask.assignee == 1
    with pytest.raises(Conflict):
        runtime.act(inst, Request("approve", 1), directory.actor(2), at(2026, 3, 4))
    runtime.act(inst, Request("submit", 2), directory.actor(1), at(2026, 3, 5, 15))
    assert task.paused_at is None and task.due_at == end(2026, 3, 11)
    with pytest.raises(Forbidden):
        runtime.act(inst, Request("grant_extension", 1, opinion="x", days=2), directory.actor(4), at(2026, 3, 5))
    effect = runtime.act(inst, Request("grant_extension", 1, opinion="同意", days=2), directory.actor(3), at(2026, 3, 5))
    assert task.due_at == end(2026, 3, 13) and effect.trail.details["days"] == 2


def test_fire_due_names_the_coordinator_and_is_empty_when_repeated():
    spec, directory, runtime = runtime_with_calendar()
    inst, effect = runtime.start(spec, {"name": "x", "route": "task"}, directory.actor(1), "zhentou", at(2026, 3, 2))
    effect.added[0].id = 1
    effects = runtime.fire_due(inst, 1, at(2026, 3, 13, 1))
    assert [(e.trail.action, e.trail.details["notify"]) for e in effects] == [
        ("remind", "assignee"), ("escalate", "invest_promo/head"), ("escalate", "coordinator")]
    assert effects[-1].notices[0].department == "econ_it"
    assert runtime.fire_due(inst, 1, at(2026, 3, 13, 1)) == []
