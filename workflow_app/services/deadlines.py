"""The clock's system events on one instance: what the SLA sweeper does once it holds the lock.

`fire_due` fires the due rungs of every task of the instance that is due (`next_reminder_at` at
or before `now`, clock running) and records deemed consent; re-running it at the same `now` does
nothing, because everything fired is counted on the task (`escalation_level`, `next_reminder_at`)
in the same transaction as its trail event.

`recompute_provisional` moves due dates computed on weekends only (a year nobody had loaded) once
that year is known. The due date is recomputed from the task's history in the trail — when its
clock started (the task's creation, or the event that opened it after waiting in line), the
extensions granted, the time it was stopped (补正, expert review) — so the result is what it would
have been had the schedule been loaded from the start; each move is a `deadline_recomputed` event.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from ..engine import clock
from ..engine.calendar import Deadline, WorkingCalendar
from ..engine.state import InstanceState, TaskStatus
from ..models import Task, TrailEvent
from .workflow import Workflow

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_YEAR = 2004  # chinesecalendar's first year


def fire_due(session: Session, workflow: Workflow, instance_id: int, now: datetime) -> Counter:
    """Everything due on one instance; returns counts by trail action."""
    counts: Counter = Counter()
    stale: dict[int, datetime | None] = {}

    def make(runtime, state: InstanceState):
        effects = []
        due = sorted((t.id for t in state.tasks if t.status is TaskStatus.open and t.paused_at is None
                      and t.next_reminder_at is not None and t.next_reminder_at <= now))
        for task_id in due:
            task = state.task(task_id)
            if task is None or task.status is not TaskStatus.open:
                continue  # decided or cancelled meanwhile (deemed consent moved the step on)
            fired = runtime.fire_due(state, task_id, now)
            if not fired:  # nothing to do after all (e.g. no ladder): look again when needed
                nxt = clock.next_check(task, clock.deadline_of(state.spec, task), runtime.calendar) \
                    if runtime.calendar is not None else None
                stale[task_id] = nxt if nxt is not None and nxt > now else None
            effects += fired
        return effects

    for effect in workflow.system_effects(session, instance_id, now, make):
        counts[effect.trail.action] += 1
    for task_id, nxt in stale.items():
        session.execute(update(Task).where(Task.id == task_id).values(next_reminder_at=nxt))
    return counts


def horizon(calendar: WorkingCalendar) -> datetime:
    """Local midnight starting the first year the calendar does not know: a provisional due date
    before it can now be computed for sure (one at or after it stays provisional)."""
    year = FIRST_YEAR
    while calendar.knows_year(year):
        year += 1
    return datetime(year, 1, 1, tzinfo=SHANGHAI).astimezone(timezone.utc)


def provisional_candidates(calendar: WorkingCalendar, skip: set[int]) -> Select:
    """Instances with a provisional due date the calendar can now compute (for `sla.claim`)."""
    q = select(Task.instance_id).where(Task.status == "open", Task.due_provisional.is_(True),
                                       Task.due_at < horizon(calendar))
    return q.where(Task.instance_id.not_in(skip)) if skip else q


@dataclass(frozen=True)
class History:
    """A task's clock as its trail tells it."""

    opened_at: datetime           # its clock started (creation, or its turn in line came)
    extension_days: int           # 延期 granted
    stopped_days: int             # working days its clock stood still and ran again
    paused_at: datetime | None    # stopped now (or when it ended), since then


def history(calendar: WorkingCalendar, task_id: int, created_at: datetime, events: list) -> History:
    """Read a task's clock from its instance's trail events (in order). A task that was acted on
    was already open: an "opened" after that is a re-opening behind a 前加签 signer, which keeps
    the clock the task had (so it does not restart the count)."""
    opened_at, opened, extra, stopped, paused_at = created_at, False, 0, 0, None
    for e in events:
        details = e.details or {}
        if e.task_id == task_id:
            opened = True
        elif not opened and task_id in details.get("opened", ()):
            opened_at, opened = e.created_at, True  # it waited in line until this event
        if e.action == "grant_extension" and e.task_id == task_id:
            extra += int(details.get("days", 0))
        if (e.action == "supplement" and task_id in details.get("paused", ())) or \
                (e.action == "pause" and e.task_id == task_id):
            paused_at = e.created_at
        elif paused_at is not None and ((e.action == "resume" and e.task_id == task_id)
                                        or task_id in details.get("resumed", ())):
            stopped += max(calendar.working_days_between(paused_at, e.created_at), 0)
            paused_at = None
    return History(opened_at, extra, stopped, paused_at)


def replay(calendar: WorkingCalendar, task: Task, events: list) -> tuple[Deadline, int] | None:
    """The due date of `task` under `calendar` from its history, and the working days counted."""
    if task.deadline_days is None:
        return None
    h = history(calendar, task.id, task.created_at, events)
    total = task.deadline_days + h.extension_days + h.stopped_days
    return calendar.add_working_days(h.opened_at, total), total


def recompute_instance(session: Session, workflow: Workflow, instance_id: int, now: datetime,
                       calendar: WorkingCalendar) -> int:
    """Recompute the provisional due dates of one instance's open tasks; returns how many moved."""
    events = list(session.execute(select(TrailEvent.action, TrailEvent.task_id, TrailEvent.details,
                                         TrailEvent.created_at)
                                  .where(TrailEvent.instance_id == instance_id).order_by(TrailEvent.seq)))
    limit = horizon(calendar)
    rows = list(session.execute(select(Task.id, Task.created_at, Task.deadline_days).where(
        Task.instance_id == instance_id, Task.status == "open", Task.due_provisional.is_(True),
        Task.due_at < limit).order_by(Task.id)))

    def make(runtime, state: InstanceState):
        runtime.calendar = calendar  # exactly the calendar the replay used
        effects = []
        for row in rows:
            replayed = replay(calendar, row, events)
            if replayed is None:
                continue
            effect = runtime.recompute_deadline(state, row.id, replayed[0], now, {"working_days": replayed[1]})
            if effect is not None:
                effects.append(effect)
        return effects

    return len(workflow.system_effects(session, instance_id, now, make))
