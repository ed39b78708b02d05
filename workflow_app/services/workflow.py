"""Starting instances and acting on them: one human action = one transaction.

Order of work inside `act` (the lock order every writer follows, so actions cannot deadlock):
  1. lock the instance row (`FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already
     serialises writers), read it with its trail head;
  2. read the tasks of the current round;
  3. let the engine decide (pure, in memory);
  4. write changed tasks, insert new ones, update the instance with a version check, append
     exactly one trail event; start or resume a sub-process in the same transaction.
If a concurrent action committed first, step 2 sees its result and the engine answers Conflict;
nothing of the losing action is written.

Sub-processes keep one order too: child before parent. A child's last action holds the child and
then locks the parent it resumes; a void locks the parent's running children before the parent.
People named by an action (转办 / 委派 / 加签 / 抄送) are checked to be active users first.

The clock: the engine gives each task its due date when it opens, from the working calendar
(process_defs/calendars + the years loaded into the database, `calendars.CalendarYears`); the
notifications an action causes are written in its own transaction (`notify.record`). System
events (reminder rungs, deemed consent, recomputed due dates) go through `system_effects`, under
the same instance lock and with the same one-event-per-effect trail as people's actions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..engine import clock as task_clock
from ..engine.calendar import WorkingCalendar
from ..engine.errors import Conflict, Forbidden, InvalidAction, NotFound
from ..engine.permissions import NOT_DECIDING
from ..engine.runtime import Effect, Request, Runtime
from ..engine.spec import ProcessSpec
from ..engine.state import SYSTEM, Actor, InstanceState, InstanceStatus, Origin, TaskState, TaskStatus
from ..engine.trail import form_hash
from ..models import CarbonCopy, ProcessInstance, Substitution, Task, TrailEvent, User
from . import notify
from .calendars import CalendarYears
from .definitions import DefinitionStore
from .directory import SqlDirectory, load_actor
from .trail import build_event

_TASK_COLUMNS = ("id", "step", "branch", "round", "seq", "origin", "status", "department", "role",
                 "assignee_id", "delegate_id", "added_by_id", "decision", "opinion", "acted_by_id",
                 "completed_at", "deadline_days", "due_at", "due_provisional", "paused_at",
                 "next_reminder_at", "escalation_level")
URGE_INTERVAL = timedelta(hours=24)  # config URGE_INTERVAL_HOURS


_TASKS = Task.__table__
_TRAIL = TrailEvent.__table__


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ActionResult:
    instance_id: int
    status: str
    current_step: str
    trail_event_id: int
    opened_task_ids: tuple[int, ...]


class Workflow:
    """The service object: definitions, calendar, clock. Stateless apart from caches keyed by
    immutable content (compiled specs, loaded calendar years), so any number of processes can run
    it side by side. `calendar` is the file calendar; `urge_interval` the 催办 rate limit."""

    def __init__(self, store: DefinitionStore, calendar: WorkingCalendar | None = None,
                 clock: Callable[[], datetime] = utcnow, *, urge_interval: timedelta | None = URGE_INTERVAL,
                 calendar_ttl: float = 60.0):
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.urge_interval = urge_interval
        self.years = CalendarYears(calendar_ttl)

    def working_calendar(self, session: Session | None = None, *, force: bool = False) -> WorkingCalendar | None:
        """The file calendar plus the years loaded into the database (None: no due dates)."""
        if self.calendar is None:
            return None
        return self.years.apply(session, self.calendar, force=force)

    def runtime(self, session: Session) -> Runtime:
        return Runtime(SqlDirectory(session, self.store.organisation), self.working_calendar(session),
                       coordinators=frozenset(self.store.organisation.coordinators()),
                       urge_interval=self.urge_interval)

    def days_left(self, task: Any, now: datetime | None = None) -> task_clock.DaysLeft | None:
        """For pages: a task's (row or TaskState) due date and working days left, None without one."""
        calendar = self.working_calendar()
        if calendar is None or task.due_at is None:
            return None
        probe = TaskState(step="", branch=None, round=0, seq=0, origin=Origin.route, status=TaskStatus.open,
                          department="", role="", due_at=task.due_at,
                          due_provisional=bool(task.due_provisional), paused_at=task.paused_at)
        return task_clock.days_left(calendar, probe, now or self.clock())

    # ---------------------------------------------------------------- start
    def start(self, session: Session, user_id: int, key: str, data: dict, *, department: str,
              subject_ref: str | None = None, trail_details: dict | None = None) -> ActionResult:
        """`trail_details` are added to the start event (e.g. the files attached with it)."""
        now = self.clock()
        user, actor = load_actor(session, user_id, department=department, role="submitter")
        definition_id, spec = self.store.latest(session, key)
        runtime = self.runtime(session)
        state, effect = runtime.start(spec, data, actor, department, now)
        if trail_details:
            effect.trail.details.update(trail_details)
        return self._create(session, runtime, spec, definition_id, state, effect, actor, now,
                            subject_ref=subject_ref)

    def _create(self, session, runtime, spec, definition_id, state, effect, actor, now, *,
                subject_ref=None, parent: tuple[int, int] | None = None) -> ActionResult:
        title = str(state.data.get(spec.title_field, "")) if spec.title_field else ""
        instance = ProcessInstance(
            definition_id=definition_id, process_key=spec.key, title=title or spec.title.zh,
            subject_kind=spec.subject, subject_ref=subject_ref, status=state.status.value,
            current_step=state.current_step, round=state.round, form_data=state.data,
            submitter_id=state.submitter, submitter_department=state.submitter_department,
            parent_id=parent[0] if parent else None, parent_round=parent[1] if parent else None,
            created_at=now, updated_at=now, ended_at=now if effect.ended else None)
        session.add(instance)
        session.flush()
        state.id = instance.id
        if parent:
            effect.trail.details["parent"] = parent[0]
        self._clock_safety_net(runtime, spec, effect, now)
        opened = self._write_tasks(session, instance.id, effect, now)
        event = self._append(session, instance.id, "", 0, effect, actor, definition_id, spec, state, now)
        session.execute(update(ProcessInstance).where(ProcessInstance.id == instance.id)
                        .values(trail_head=event["hash"], trail_count=1))
        notify.record(session, state=state, title=instance.title, effect=effect, actor=actor,
                      directory=runtime.directory, now=now)
        result = ActionResult(instance.id, state.status.value, state.current_step, event["id"], opened)
        self._follow_up(session, runtime, state, effect, actor, now)
        return result

    # ---------------------------------------------------------------- act
    def act(self, session: Session, user_id: int, instance_id: int, request: Request, *,
            department: str | None = None, role: str | None = None,
            on_behalf_of: int | None = None, trail_details: dict | None = None) -> ActionResult:
        """`trail_details` are added to the action's trail event (e.g. the files attached with it)."""
        now = self.clock()
        user, actor = load_actor(session, user_id, department=department, role=role)
        if on_behalf_of is not None:
            actor = self._substitute(session, actor, on_behalf_of, now)
        return self._act(session, instance_id, request, actor, now, trail_details)

    def _act(self, session, instance_id, request, actor, now, trail_details=None) -> ActionResult:
        self._check_people(session, request)
        if request.action == "void":
            # A void ends the running children too. Children are locked BEFORE their parent, the
            # same order as a child's last action (child, then the parent it resumes), so a void
            # and a child finishing at the same moment cannot deadlock.
            session.execute(select(ProcessInstance.id).where(
                ProcessInstance.parent_id == instance_id, ProcessInstance.status == "running")
                .order_by(ProcessInstance.id).with_for_update()).all()
        row = self._lock(session, instance_id)
        spec = self.store.spec(session, row.definition_id)
        runtime = self.runtime(session)
        state = self._state(session, row, spec)
        if request.action == "urge" and self.urge_interval:
            state.recent_urges = self._recent_urges(session, instance_id, now - self.urge_interval)
        effect = runtime.act(state, request, actor, now)
        if trail_details:
            effect.trail.details.update(trail_details)
        return self._commit_effect(session, runtime, row, spec, state, effect, actor, now)

    def system_effects(self, session: Session, instance_id: int, now: datetime,
                       make: Callable[[Runtime, InstanceState], list[Effect]]) -> list[Effect]:
        """Run a system event on one instance under its lock (the caller's transaction): `make`
        returns the effects, each committed in turn with its own trail event (actor 系统)."""
        row = self._lock(session, instance_id)
        spec = self.store.spec(session, row.definition_id)
        runtime = self.runtime(session)
        state = self._state(session, row, spec)
        effects = make(runtime, state) if state.status is InstanceStatus.running else []
        for i, effect in enumerate(effects):
            if i:
                row = self._lock(session, instance_id)  # the previous effect moved the trail head
            self._commit_effect(session, runtime, row, spec, state, effect, SYSTEM, now)
        return effects

    def _recent_urges(self, session: Session, instance_id: int, since: datetime) -> dict[int, datetime]:
        last: dict[int, datetime] = {}
        for details, at in session.execute(select(TrailEvent.details, TrailEvent.created_at).where(
                TrailEvent.instance_id == instance_id, TrailEvent.action == "urge",
                TrailEvent.created_at > since)):
            for task_id in (details or {}).get("tasks", ()):
                last[task_id] = max(at, last.get(task_id, at))
        return last

    def _clock_safety_net(self, runtime, spec, effect, now) -> None:
        """Tasks opened by a runtime made without a calendar (e.g. a migration's) still get their
        due dates here; the engine normally sets them when the task opens."""
        if getattr(runtime, "calendar", None) is not None or self.calendar is None:
            return
        for t in effect.added + effect.changed:
            if t.status is TaskStatus.open and t.due_at is None and t.deadline_days is not None:
                task_clock.start(t, task_clock.deadline_of(spec, t), self.working_calendar(), now)

    def _commit_effect(self, session, runtime, row, spec, state, effect, actor, now) -> ActionResult:
        self._clock_safety_net(runtime, spec, effect, now)
        opened = self._write_tasks(session, row.id, effect, now)
        event = self._append(session, row.id, row.trail_head, row.trail_count, effect, actor,
                             row.definition_id, spec, state, now)
        values = dict(version=row.version + 1, updated_at=now, trail_head=event["hash"],
                      trail_count=row.trail_count + 1)
        if effect.moved or effect.ended:
            values.update(current_step=state.current_step, round=state.round, status=state.status.value)
        if effect.ended:
            values["ended_at"] = now
        if effect.data_changed:
            values["form_data"] = state.data
        done = session.execute(update(ProcessInstance).where(
            ProcessInstance.id == row.id, ProcessInstance.version == row.version).values(**values))
        if done.rowcount != 1:  # belt and braces: the row lock should make this impossible
            raise Conflict("the application changed while you were acting; reload and try again")
        if effect.cc:
            self._carbon_copy(session, row.id, effect.cc, actor, now)
        notify.record(session, state=state, title=getattr(row, "title", "") or spec.title.zh, effect=effect,
                      actor=actor, directory=runtime.directory, now=now)
        result = ActionResult(row.id, state.status.value, state.current_step, event["id"], opened)
        self._follow_up(session, runtime, state, effect, actor, now)
        return result

    def _check_people(self, session: Session, request: Request) -> None:
        """People named by 转办 / 委派 / 加签 / 抄送 must be active users: otherwise the action would
        fail on a foreign key (a server error) or hand a task to nobody."""
        named = set(request.users) | ({request.user} if request.user is not None else set())
        if not named:
            return
        known = set(session.scalars(select(User.id).where(User.id.in_(named), User.is_active.is_(True))))
        if named - known:
            raise InvalidAction("unknown or disabled user", users=sorted(named - known))

    def _follow_up(self, session, runtime, state, effect, actor, now) -> None:
        """Sub-processes: start a child the step asks for; resume a parent whose child ended;
        void the running children of a voided parent (nobody is left to wait for them)."""
        if effect.start_child is not None:
            definition_id, child_spec = self.store.latest(session, effect.start_child.process)
            submitter = Actor(user_id=state.submitter, name=actor.name, system=True,
                              memberships=frozenset({(state.submitter_department, "submitter")}))
            child_state, child_effect = runtime.start(child_spec, effect.start_child.data, submitter,
                                                      state.submitter_department, now)
            self._create(session, runtime, child_spec, definition_id, child_state, child_effect, actor,
                         now, parent=(state.id, state.round))
        if effect.ended and state.parent_id is not None:
            # Lock order: child, then parent (a void takes its children's locks first too, see `_act`).
            parent = self._lock(session, state.parent_id)
            child_round = session.scalar(select(ProcessInstance.parent_round)
                                         .where(ProcessInstance.id == state.id))
            if parent.status == InstanceStatus.running.value and parent.round == child_round:
                parent_spec = self.store.spec(session, parent.definition_id)
                parent_state = self._state(session, parent, parent_spec)
                parent_effect = runtime.child_finished(parent_state, state.status, state.id, now)
                self._commit_effect(session, runtime, parent, parent_spec, parent_state,
                                    parent_effect, actor, now)
            # else: the parent no longer waits on this child (voided meanwhile); nothing to resume.
        if effect.ended and state.status is InstanceStatus.void:
            children = session.scalars(select(ProcessInstance.id).where(
                ProcessInstance.parent_id == state.id, ProcessInstance.status == "running")).all()
            for child_id in children:  # already locked by `_act`
                child = self._lock(session, child_id)
                child_spec = self.store.spec(session, child.definition_id)
                child_state = self._state(session, child, child_spec)
                child_effect = runtime.parent_voided(child_state, state.id, now)
                self._commit_effect(session, runtime, child, child_spec, child_state, child_effect,
                                    actor, now)

    # ---------------------------------------------------------------- loading
    def _lock(self, session: Session, instance_id: int) -> ProcessInstance:
        row = session.execute(
            select(ProcessInstance.id, ProcessInstance.definition_id, ProcessInstance.status,
                   ProcessInstance.current_step, ProcessInstance.round, ProcessInstance.form_data,
                   ProcessInstance.submitter_id, ProcessInstance.submitter_department,
                   ProcessInstance.parent_id, ProcessInstance.version, ProcessInstance.trail_head,
                   ProcessInstance.trail_count, ProcessInstance.title)
            .where(ProcessInstance.id == instance_id).with_for_update()).one_or_none()
        if row is None:
            raise NotFound("no such application")
        return row  # type: ignore[return-value]

    def _state(self, session: Session, row, spec: ProcessSpec) -> InstanceState:
        tasks = [TaskState(step=t.step, branch=t.branch, round=t.round, seq=t.seq,
                           origin=Origin(t.origin), status=TaskStatus(t.status),
                           department=t.department, role=t.role, assignee=t.assignee_id,
                           delegate=t.delegate_id, added_by=t.added_by_id, decision=t.decision,
                           opinion=t.opinion, acted_by=t.acted_by_id, completed_at=t.completed_at,
                           deadline_days=t.deadline_days, id=t.id, due_at=t.due_at,
                           due_provisional=t.due_provisional, paused_at=t.paused_at,
                           next_reminder_at=t.next_reminder_at, escalation_level=t.escalation_level)
                 for t in session.execute(
                     select(*[getattr(Task, c) for c in _TASK_COLUMNS])
                     .where(Task.instance_id == row.id, Task.round == row.round).order_by(Task.seq, Task.id))]
        decided: dict[int, frozenset[str]] = {}
        if spec.rules.distinct_deciders:
            # Who decided which step, in every round: the task's owner and whoever pressed the
            # button (a stand-in acting for them); approve/reject and custom actions count.
            by_user: dict[int, set[str]] = {}
            for owner, acted_by, step in session.execute(
                    select(Task.assignee_id, Task.acted_by_id, Task.step).where(
                        Task.instance_id == row.id, Task.status == "done",
                        Task.decision.not_in(sorted(NOT_DECIDING)))):
                for user in {owner, acted_by} - {None}:
                    by_user.setdefault(user, set()).add(step)
            decided = {u: frozenset(s) for u, s in by_user.items()}
        return InstanceState(spec=spec, status=InstanceStatus(row.status), current_step=row.current_step,
                             round=row.round, data=dict(row.form_data or {}), submitter=row.submitter_id,
                             submitter_department=row.submitter_department, tasks=tasks, id=row.id,
                             parent_id=row.parent_id, decided_steps=decided)

    def _substitute(self, session: Session, actor: Actor, absent_user: int, now: datetime) -> Actor:
        active = session.scalar(select(Substitution.id).where(
            Substitution.user_id == absent_user, Substitution.substitute_id == actor.user_id,
            Substitution.starts_at <= now, Substitution.ends_at > now))
        if active is None:
            raise Forbidden("you are not standing in for that person now")
        _absent, absent_actor = load_actor(session, absent_user)
        return Actor(user_id=actor.user_id, name=actor.name, memberships=actor.memberships,
                     department=actor.department, role=actor.role, admin_role=actor.admin_role,
                     on_behalf_of=absent_user, on_behalf_memberships=absent_actor.memberships)

    # ---------------------------------------------------------------- writing
    def _write_tasks(self, session: Session, instance_id: int, effect: Effect, now: datetime) -> tuple[int, ...]:
        changed = [t for t in effect.changed if t.id is not None]
        if changed:
            session.connection().execute(
                update(_TASKS).where(_TASKS.c.id == bindparam("tid")).values(
                    status=bindparam("status"), assignee_id=bindparam("assignee"),
                    delegate_id=bindparam("delegate"), decision=bindparam("decision"),
                    opinion=bindparam("opinion"), acted_by_id=bindparam("acted_by"),
                    completed_at=bindparam("completed_at"), origin=bindparam("origin"),
                    due_at=bindparam("due_at"), due_provisional=bindparam("due_provisional"),
                    paused_at=bindparam("paused_at"), next_reminder_at=bindparam("next_reminder_at"),
                    escalation_level=bindparam("escalation_level")),
                [dict(tid=t.id, status=t.status.value, assignee=t.assignee, delegate=t.delegate,
                      decision=t.decision, opinion=t.opinion, acted_by=t.acted_by,
                      completed_at=t.completed_at if t.status is not TaskStatus.cancelled else now,
                      origin=t.origin.value, due_at=t.due_at, due_provisional=t.due_provisional,
                      paused_at=t.paused_at,
                      next_reminder_at=t.next_reminder_at if t.status is TaskStatus.open else None,
                      escalation_level=t.escalation_level) for t in changed])
        if not effect.added:
            return ()
        rows = [dict(instance_id=instance_id, step=t.step, branch=t.branch, round=t.round,
                     seq=t.seq, origin=t.origin.value, status=t.status.value,
                     department=t.department, role=t.role, assignee_id=t.assignee,
                     added_by_id=t.added_by, created_at=now, deadline_days=t.deadline_days,
                     due_at=t.due_at, due_provisional=t.due_provisional, paused_at=t.paused_at,
                     next_reminder_at=t.next_reminder_at, escalation_level=t.escalation_level,
                     delegate_id=None)
                for t in effect.added]
        ids = session.connection().execute(
            insert(_TASKS).returning(_TASKS.c.id, sort_by_parameter_order=True), rows).scalars().all()
        for task, new_id in zip(effect.added, ids):
            task.id = new_id
        return tuple(ids)

    def _due(self, opened_at: datetime, days: int | None) -> tuple[datetime | None, bool]:
        """Kept for subclasses (bench); the engine sets due dates when tasks open."""
        if days is None or self.calendar is None:
            return None, False
        deadline = self.calendar.add_working_days(opened_at, days)
        return deadline.due_at, deadline.provisional

    def _append(self, session, instance_id, head, count, effect, actor: Actor, definition_id,
                spec, state, now) -> dict:
        entry = effect.trail
        machine = actor.system and actor.user_id == 0  # 系统: no department acted (deemed consent ...)
        row = build_event(
            prev_hash=head, seq=count + 1, instance_id=instance_id, created_at=now,
            action=entry.action, actor_id=None if machine else actor.user_id, actor_name=actor.name,
            actor_department=actor.department or (None if machine else self._acting_department(effect)),
            actor_role=actor.role or (None if machine else self._acting_role(effect)),
            on_behalf_of_id=actor.on_behalf_of, task_id=entry.task_id, from_step=entry.from_step,
            to_step=entry.to_step, opinion=entry.opinion, definition_id=definition_id,
            definition_hash=spec.content_hash, form_hash=form_hash(state.data), details=entry.details)
        row["id"] = session.connection().execute(
            insert(_TRAIL).returning(_TRAIL.c.id), row).scalar_one()
        return row

    @staticmethod
    def _acting_department(effect: Effect) -> str | None:
        task = next((t for t in effect.changed if t.id == effect.trail.task_id), None)
        return task.department if task else None

    @staticmethod
    def _acting_role(effect: Effect) -> str | None:
        task = next((t for t in effect.changed if t.id == effect.trail.task_id), None)
        return task.role if task else None

    def _carbon_copy(self, session, instance_id, users, actor, now) -> None:
        existing = set(session.scalars(select(CarbonCopy.user_id).where(
            CarbonCopy.instance_id == instance_id, CarbonCopy.user_id.in_(users))))
        for user in users:
            if user not in existing:
                session.add(CarbonCopy(instance_id=instance_id, user_id=user, by_id=actor.user_id,
                                       created_at=now))
        session.flush()


__all__ = ["Workflow", "ActionResult", "Request", "InvalidAction", "Conflict", "Forbidden", "NotFound"]
