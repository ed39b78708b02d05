"""The SLA sweeper: reminders, escalations, deemed consent, recomputed due dates and e-mail.

Time lives in the database (`task.next_reminder_at`, `task.due_at`, `notification.emailed_at`);
no process keeps a timer. `sweep(db, workflow, now)` is one pass, run by cron
(`flask sla sweep` every minute) or by the long-running `flask sla worker`; any number of them
may run at once, on any number of hosts:

* Due work is claimed per instance with `SELECT ... FOR UPDATE SKIP LOCKED` on the instance row —
  the same row every action locks first, so the sweeper follows the actions' lock order and a
  sweeper never waits for another (it takes the next unlocked instance instead).
* Under the lock the instance's tasks are read afresh and only what is still due is done: a
  claim that raced with another sweeper's commit finds nothing left. Everything fired is
  recorded on the task in the same transaction as its trail event and notifications, so each
  rung, each deemed consent, each recomputation happens exactly once; re-running at the same
  `now` does nothing new.
* Each claimed batch is one transaction, each instance in it a savepoint: one broken instance is
  logged and skipped, never blocks the rest.
* On SQLite (one node) the same code runs without SKIP LOCKED: `BEGIN IMMEDIATE` serialises it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..database import Database
from ..models import Notification, ProcessInstance, Task
from ..models.notification import MAX_EMAIL_ATTEMPTS
from . import deadlines
from .mailer import Mail, Mailer
from .workflow import Workflow

log = logging.getLogger(__name__)


@dataclass
class SweepStats:
    instances: int = 0
    reminders: int = 0
    escalations: int = 0
    deemed_consents: int = 0
    recomputed: int = 0
    emails_sent: int = 0
    emails_failed: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def acted(self) -> int:
        return self.reminders + self.escalations + self.deemed_consents + self.recomputed + self.emails_sent


def due_candidates(now: datetime, skip: set[int]) -> Select:
    """Instances with a task whose next check has come (clock running)."""
    q = select(Task.instance_id).where(Task.status == "open", Task.paused_at.is_(None),
                                       Task.next_reminder_at <= now)
    return q.where(Task.instance_id.not_in(skip)) if skip else q


def claim(session: Session, db: Database, candidates: Select, batch: int) -> list[int]:
    """Lock up to `batch` running instances among `candidates`, skipping those another
    transaction holds (PostgreSQL); in id order, the order every multi-instance writer uses."""
    q = (select(ProcessInstance.id).where(ProcessInstance.id.in_(candidates),
                                          ProcessInstance.status == "running")
         .order_by(ProcessInstance.id).limit(batch))
    if not db.is_sqlite:
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def sweep(db: Database, workflow: Workflow, now: datetime, batch: int = 100,
          mailer: Mailer | None = None) -> SweepStats:
    """One pass over everything due at `now`."""
    stats = SweepStats()
    with db.read() as session:
        workflow.working_calendar(session, force=True)  # see a calendar loaded on another host
    seen: set[int] = set()
    while True:
        with db.write() as session:
            ids = claim(session, db, due_candidates(now, seen), batch)
            for instance_id in ids:
                seen.add(instance_id)
                try:
                    with session.begin_nested():
                        counts = deadlines.fire_due(session, workflow, instance_id, now)
                except Exception:  # logged with its traceback; the others carry on
                    log.exception("sweeping instance %s failed", instance_id)
                    stats.errors += 1
                    continue
                stats.instances += 1
                stats.reminders += counts["remind"]
                stats.escalations += counts["escalate"]
                stats.deemed_consents += counts["deemed_consent"]
        if len(ids) < batch:
            break
    stats.recomputed = recompute_provisional(db, workflow, now, batch=batch, stats=stats)
    if mailer is not None:
        drain_outbox(db, mailer, now, batch=batch, stats=stats)
    return stats


def recompute_provisional(db: Database, workflow: Workflow, now: datetime, *, batch: int = 100,
                          stats: SweepStats | None = None) -> int:
    """Recompute every provisional due date the calendar (files + database) can now compute for
    sure (after `flask calendar load`, or one computed on a stale calendar)."""
    moved, seen = 0, set()
    while True:
        with db.write() as session:
            calendar = workflow.working_calendar(session, force=True)
            if calendar is None:
                return moved
            ids = claim(session, db, deadlines.provisional_candidates(calendar, seen), batch)
            for instance_id in ids:
                seen.add(instance_id)
                try:
                    with session.begin_nested():
                        moved += deadlines.recompute_instance(session, workflow, instance_id, now, calendar)
                except Exception:
                    log.exception("recomputing due dates of instance %s failed", instance_id)
                    if stats is not None:
                        stats.errors += 1
        if len(ids) < batch:
            return moved


def drain_outbox(db: Database, mailer: Mailer, now: datetime, *, batch: int = 100,
                 stats: SweepStats | None = None) -> SweepStats:
    """Send the notifications waiting for e-mail; a failed one is tried again on later passes,
    at most MAX_EMAIL_ATTEMPTS times."""
    stats = stats or SweepStats()
    tried: set[int] = set()
    while True:
        with db.write() as session:
            q = (select(Notification).where(Notification.email_to.is_not(None),
                                            Notification.emailed_at.is_(None),
                                            Notification.email_attempts < MAX_EMAIL_ATTEMPTS)
                 .order_by(Notification.id).limit(batch))
            if tried:
                q = q.where(Notification.id.not_in(tried))
            if not db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            rows = list(session.scalars(q))
            results = mailer.send([Mail(r.email_to, r.title, r.body, r.id) for r in rows])  # type: ignore[arg-type]
            for row, error in zip(rows, results):
                tried.add(row.id)
                if error is None:
                    row.emailed_at, row.email_error = now, None
                    stats.emails_sent += 1
                else:
                    row.email_attempts += 1
                    row.email_error = error
                    stats.emails_failed += 1
        if len(rows) < batch:
            return stats
