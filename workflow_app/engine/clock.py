"""The task clock: due dates, pauses, extensions and the escalation ladder of one task.

Pure functions over a `TaskState` and a `WorkingCalendar` (no I/O): the runtime calls them when a
task opens, is paused or resumed, or gets an extension; the sweeper asks `due_rungs` what has come
due. Time lives in the task's columns (`due_at`, `paused_at`, `next_reminder_at`,
`escalation_level`), never in a process's memory.

Counting (the calendar's deadline rule): a task that opens at t with N working days is due at the
end of the N-th working day after t's local date. A task is only ever given a due date when it
OPENS: a 依次 or 后加签 task waiting in line has none until its turn comes.

The ladder: rung k fires `at_days` working days relative to the due date, at the end of that
working day — `at_days: 0` when the task becomes overdue, `3` at the end of the third working day
late, `-1` at the end of the last working day but one (one working day left). `escalation_level`
counts the rungs passed (fired, or skipped because a due-soon reminder would come after the task
already opened). `next_reminder_at` is the next instant the sweeper must look at the task: the
next rung, or the due date itself on a deemed-consent branch; NULL while paused or when nothing is
left to do. A pause or an extension moves the due date and re-arms the rungs that now lie in the
future, so an extended task that runs late again is escalated again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .calendar import WorkingCalendar
from .spec import DeadlineSpec, ProcessSpec, RungSpec
from .state import Origin, TaskState

EPSILON = timedelta(microseconds=1)


@dataclass(frozen=True)
class DaysLeft:
    """What a page shows beside a due date."""

    due_date: date          # the last working day (local)
    working_days: int       # working days left after today; negative: working days overdue
    overdue: bool
    provisional: bool       # computed on weekends only for a year whose schedule is not loaded
    paused: bool            # the clock is stopped (补正 / expert review / hearing)


def deadline_of(spec: ProcessSpec, task: TaskState) -> DeadlineSpec | None:
    """The time limit a task runs under: its branch's or its step's (a submitter's own task has
    none: 补正 and resubmission are not the administration's time)."""
    if task.origin is Origin.start:
        return None
    step = spec.steps.get(task.step)
    return step.deadline_for(task.branch) if step is not None else None


def ladder(deadline: DeadlineSpec | None) -> tuple[RungSpec, ...]:
    """The rungs in firing order (stable for equal `at_days`: file order)."""
    return tuple(sorted(deadline.escalation, key=lambda r: r.at_days)) if deadline else ()


def end_of_day(calendar: WorkingCalendar, day: date, near: datetime) -> datetime:
    """The local midnight that ends `day` (UTC), given an instant `near` on the same local day
    or after it (Asia/Shanghai has no daylight saving, so whole days can be stepped back)."""
    local_near = calendar.local_date(near)
    instant = near - timedelta(days=(local_near - day).days)
    return calendar.add_working_days(instant, 0).due_at


def rung_time(calendar: WorkingCalendar, due_at: datetime, at_days: int) -> datetime:
    """When a rung `at_days` working days from the due date fires (see the module docstring)."""
    if at_days == 0:
        return due_at
    last = due_at - EPSILON  # an instant on the last working day
    if at_days > 0:
        return calendar.add_working_days(last, at_days).due_at
    day, left = calendar.local_date(last), -at_days
    while left:
        day -= timedelta(days=1)
        if calendar.is_working_day_provisional(day)[0]:
            left -= 1
    return end_of_day(calendar, day, last)


def next_check(task: TaskState, deadline: DeadlineSpec | None, calendar: WorkingCalendar) -> datetime | None:
    """When the sweeper must next look at `task`: its next rung, or (deemed consent) its due date."""
    if task.due_at is None or task.paused_at is not None or deadline is None:
        return None
    times = []
    rungs = ladder(deadline)
    if task.escalation_level < len(rungs):
        times.append(rung_time(calendar, task.due_at, rungs[task.escalation_level].at_days))
    if deadline.deemed_consent:
        times.append(task.due_at)
    return min(times) if times else None


def start(task: TaskState, deadline: DeadlineSpec | None, calendar: WorkingCalendar | None,
          now: datetime) -> None:
    """Start the clock of a task that has just opened (once: a task re-opened after a 前加签
    keeps the due date it had, and its ladder is armed again — a waiting task is never looked
    at by the sweeper, so the rungs still to fire must be scheduled anew)."""
    if calendar is None or task.deadline_days is None:
        return
    if task.due_at is not None:
        task.next_reminder_at = next_check(task, deadline, calendar)
        return
    deadline_ = calendar.add_working_days(now, task.deadline_days)
    task.due_at, task.due_provisional = deadline_.due_at, deadline_.provisional
    task.paused_at = None
    rungs = ladder(deadline)
    level = 0
    # A due-soon reminder that would fire before the task even opened tells nobody anything new.
    while level < len(rungs) and rungs[level].at_days < 0 \
            and rung_time(calendar, task.due_at, rungs[level].at_days) <= now:
        level += 1
    task.escalation_level = level
    task.next_reminder_at = next_check(task, deadline, calendar)


def shift(task: TaskState, days: int, deadline: DeadlineSpec | None, calendar: WorkingCalendar,
          now: datetime) -> None:
    """Move the due date `days` working days later (extension, or time spent paused) and re-arm
    the rungs that now lie in the future."""
    if task.due_at is None:
        return
    if days:
        moved = calendar.add_working_days(task.due_at - EPSILON, days)
        task.due_at = moved.due_at
        task.due_provisional = task.due_provisional or moved.provisional
    rungs = ladder(deadline)
    passed = 0
    while passed < len(rungs) and rung_time(calendar, task.due_at, rungs[passed].at_days) <= now:
        passed += 1
    task.escalation_level = min(task.escalation_level, passed)
    task.next_reminder_at = next_check(task, deadline, calendar)


def pause(task: TaskState, now: datetime) -> None:
    task.paused_at = now
    task.next_reminder_at = None


def resume(task: TaskState, deadline: DeadlineSpec | None, calendar: WorkingCalendar | None,
           now: datetime) -> int:
    """Restart a stopped clock; the due date moves by the working days it was stopped. Returns
    that number (the day the clock stopped still counted; the day it restarts does not)."""
    paused_at, task.paused_at = task.paused_at, None
    if paused_at is None or calendar is None or task.due_at is None:
        return 0
    days = max(calendar.working_days_between(paused_at, now), 0)
    shift(task, days, deadline, calendar, now)
    return days


def due_rungs(task: TaskState, deadline: DeadlineSpec | None, calendar: WorkingCalendar,
              now: datetime) -> list[tuple[int, RungSpec]]:
    """The rungs (index, rung) that have come due and not fired yet, in order."""
    if task.due_at is None or task.paused_at is not None:
        return []
    out = []
    rungs = ladder(deadline)
    for index in range(task.escalation_level, len(rungs)):
        if rung_time(calendar, task.due_at, rungs[index].at_days) > now:
            break
        out.append((index, rungs[index]))
    return out


def days_left(calendar: WorkingCalendar, task: TaskState, now: datetime) -> DaysLeft | None:
    """Date and working days left (signed) of an open task, or None without a due date. A paused
    task's count stands still at the moment it stopped."""
    if task.due_at is None:
        return None
    at = task.paused_at or now
    overdue = at >= task.due_at
    if overdue:
        left = -calendar.working_days_between(task.due_at - EPSILON, at)
    else:
        left = calendar.working_days_between(at, task.due_at)
    return DaysLeft(calendar.local_date(task.due_at - EPSILON), left, overdue, task.due_provisional,
                    task.paused_at is not None)
