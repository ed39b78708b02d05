"""Starting instances and acting on them: one human action = one transaction.

Order of work inside `act` (the lock order every writer follows, so actions cannot deadlock):
  1. lock the instance row (`FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already
     serialises writers), read it with its trail head;
  2. read the tasks of the current round;
  3. let the engine decide (pure, in memory);
  4. write changed tasks, insert new ones, update the instance with a version check, append
     exactly one trail event; start or resume a sub-process in the same transaction.
If a concurrent action committed first, step 2 sees its result and the engine answers Conflict;
nothing of the losing action is written. The SQL of each step lives in `instance_rows` (prepared
statements on the transaction's connection); this module owns the order and the rules.

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

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ..database import core_connection
from ..engine import clock as task_clock
from ..engine.calendar import WorkingCalendar
from ..engine.errors import Conflict, Forbidden, InvalidAction, NotFound
from ..engine.runtime import Effect, Request, Runtime
from ..engine.spec import ProcessSpec
from ..engine.state import SYSTEM, Actor, InstanceState, InstanceStatus, Origin, TaskState, TaskStatus
from ..engine.trail import form_hash
from ..models import CarbonCopy, ProcessInstance, Substitution, User
from . import instance_rows, notify
from .calendars import CalendarYears
from .definitions import DefinitionStore
from .directory import SqlDirectory, load_actor
from .trail import build_event

URGE_INTERVAL = timedelta(hours=24)  # config URGE_INTERVAL_HOURS


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
                 calendar_ttl: float = 60.0, hooks=None):
        self.store = store
        # What the shipped processes read from and write to the park portfolio (services/park_links);
        # any object with prepare_start / prepare_act / finished will do.
        if hooks is None:
            from . import park_links as hooks
        self.hooks = hooks
        self.calendar = calendar
        self.clock = clock
        self.urge_interval = urge_interval
        self.years = CalendarYears(calendar_ttl)
        self._coordinators: tuple[Any, frozenset[str]] | None = None  # (organisation, its coordinators)

    def working_calendar(self, session: Session | None = None, *, force: bool = False) -> WorkingCalendar | None:
        """The file calendar plus the years loaded into the database (None: no due dates)."""
        if self.calendar is None:
            return None
        return self.years.apply(session, self.calendar, force=force)

    def runtime(self, session: Session) -> Runtime:
        organisation = self.store.organisation
        if self._coordinators is None or self._coordinators[0] is not organisation:
            self._coordinators = (organisation, frozenset(organisation.coordinators()))
        return Runtime(SqlDirectory(session, organisation), self.working_calendar(session),
                       coordinators=self._coordinators[1],
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
        data, park_ref = self.hooks.prepare_start(session, spec, data)
        runtime = self.runtime(session)
        state, effect = runtime.start(spec, data, actor, department, now)
        if trail_details:
            effect.trail.details.update(trail_details)
        return self._create(session, runtime, spec, definition_id, state, effect, actor, now,
                            subject_ref=subject_ref or park_ref)

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
            state.parent_id = parent[0]  # so that `_follow_up` sees the parent from the first move
            effect.trail.details["parent"] = parent[0]
        self._clock_safety_net(runtime, spec, effect, now)
        conn = core_connection(session)
        opened = instance_rows.write_tasks(conn, instance.id, effect, now)
        event = self._append(conn, instance.id, "", 0, effect, actor, definition_id, spec, state, now)
        instance_rows.update_instance(session, conn, instance.id,
                                      {"trail_head": event["hash"], "trail_count": 1}, expected_version=None)
        notify.record(conn, state=state, title=instance.title, effect=effect, actor=actor,
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
        spec = self.store.spec(session, row.definition_id, row.definition_hash)
        runtime = self.runtime(session)
        state = self._state(session, row, spec)
        if request.action == "urge" and self.urge_interval:
            state.recent_urges = instance_rows.recent_urges(core_connection(session), instance_id,
                                                            now - self.urge_interval)
        request = self.hooks.prepare_act(session, spec, state, request)
        effect = runtime.act(state, request, actor, now)
        if trail_details:
            effect.trail.details.update(trail_details)
        return self._commit_effect(session, runtime, row, spec, state, effect, actor, now)

    def system_effects(self, session: Session, instance_id: int, now: datetime,
                       make: Callable[[Runtime, InstanceState], list[Effect]]) -> list[Effect]:
        """Run a system event on one instance under its lock (the caller's transaction): `make`
        returns the effects, each committed in turn with its own trail event (actor 系统)."""
        row = self._lock(session, instance_id)
        spec = self.store.spec(session, row.definition_id, row.definition_hash)
        runtime = self.runtime(session)
        state = self._state(session, row, spec)
        effects = make(runtime, state) if state.status is InstanceStatus.running else []
        for i, effect in enumerate(effects):
            if i:
                row = self._lock(session, instance_id)  # the previous effect moved the trail head
            self._commit_effect(session, runtime, row, spec, state, effect, SYSTEM, now)
        return effects

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
        conn = core_connection(session)
        opened = instance_rows.write_tasks(conn, row.id, effect, now)
        event = self._append(conn, row.id, row.trail_head, row.trail_count, effect, actor,
                             row.definition_id, spec, state, now)
        values = dict(version=row.version + 1, updated_at=now, trail_head=event["hash"],
                      trail_count=row.trail_count + 1)
        if effect.moved or effect.ended:
            values.update(current_step=state.current_step, round=state.round, status=state.status.value)
        if effect.ended:
            values["ended_at"] = now
        if effect.data_changed:
            values["form_data"] = state.data
        done = instance_rows.update_instance(session, conn, row.id, values, expected_version=row.version)
        if done != 1:  # belt and braces: the row lock should make this impossible
            raise Conflict("the application changed while you were acting; reload and try again")
        if effect.cc:
            self._carbon_copy(session, row.id, effect.cc, actor, now)
        notify.record(conn, state=state, title=getattr(row, "title", "") or spec.title.zh, effect=effect,
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
                         now, parent=(state.id, state.round),
                         subject_ref=self.hooks.subject_of(session, child_spec.key, child_state.data))
        if effect.moved and not effect.ended and state.parent_id is not None:
            self._resume_at(session, runtime, state, actor, now)
        if effect.ended:
            self.hooks.finished(session, state, actor, now)
        if effect.ended and state.parent_id is not None:
            # Lock order: child, then parent (a void takes its children's locks first too, see `_act`).
            parent = self._lock(session, state.parent_id)
            child_round = session.scalar(select(ProcessInstance.parent_round)
                                         .where(ProcessInstance.id == state.id))
            if parent.status == InstanceStatus.running.value and parent.round == child_round:
                parent_spec = self.store.spec(session, parent.definition_id, parent.definition_hash)
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
                child_spec = self.store.spec(session, child.definition_id, child.definition_hash)
                child_state = self._state(session, child, child_spec)
                child_effect = runtime.parent_voided(child_state, state.id, now)
                self._commit_effect(session, runtime, child, child_spec, child_state, child_effect,
                                    actor, now)

    def _resume_at(self, session, runtime, state, actor, now) -> None:
        """`resume_at`: the parent goes on as soon as its child reaches one of the named steps.
        A plain read first (one statement per move of a child), the lock only when it applies;
        lock order child, then parent, as for a child's end."""
        child = aliased(ProcessInstance)
        look = session.execute(
            select(ProcessInstance.definition_id, ProcessInstance.current_step,
                   ProcessInstance.status, ProcessInstance.round, child.parent_round)
            .join(child, child.parent_id == ProcessInstance.id)
            .where(ProcessInstance.id == state.parent_id, child.id == state.id)).one()
        step = self.store.spec(session, look.definition_id).steps.get(look.current_step)
        if (look.status != InstanceStatus.running.value or look.round != look.parent_round
                or step is None or state.current_step not in step.resume_at):
            return
        parent = self._lock(session, state.parent_id)
        if (parent.status != InstanceStatus.running.value or parent.round != look.parent_round
                or parent.current_step != look.current_step):
            return  # it moved on between the read and the lock
        parent_spec = self.store.spec(session, parent.definition_id, parent.definition_hash)
        parent_state = self._state(session, parent, parent_spec)
        parent_effect = runtime.child_reached(parent_state, state.current_step, state.id, now)
        self._commit_effect(session, runtime, parent, parent_spec, parent_state, parent_effect,
                            actor, now)

    # ---------------------------------------------------------------- loading
    def _lock(self, session: Session, instance_id: int) -> instance_rows.LockedInstance:
        row = instance_rows.lock(core_connection(session), instance_id)
        if row is None:
            raise NotFound("no such application")
        return row

    def _state(self, session: Session, row: instance_rows.LockedInstance, spec: ProcessSpec) -> InstanceState:
        conn = core_connection(session)
        tasks = instance_rows.round_tasks(conn, row.id, row.round)
        decided = instance_rows.decided_steps(conn, row.id) if spec.rules.distinct_deciders else {}
        return InstanceState(spec=spec, status=InstanceStatus(row.status), current_step=row.current_step,
                             round=row.round, data=dict(row.form_data or {}), submitter=row.submitter_id,
                             submitter_department=row.submitter_department, tasks=tasks, id=row.id,
                             parent_id=row.parent_id, decided_steps=decided)

    def _substitute(self, session: Session, actor: Actor, absent_user: int, now: datetime) -> Actor:
        active = session.scalar(select(Substitution.id).where(
            Substitution.user_id == absent_user, Substitution.substitute_id == actor.user_id,
            Substitution.starts_at <= now, Substitution.ends_at > now))
        if active is None:
            raise Forbidden("you are not standing in for that person now", "not_substitute")
        _absent, absent_actor = load_actor(session, absent_user)
        return Actor(user_id=actor.user_id, name=actor.name, memberships=actor.memberships,
                     department=actor.department, role=actor.role, admin_role=actor.admin_role,
                     on_behalf_of=absent_user, on_behalf_memberships=absent_actor.memberships)

    # ---------------------------------------------------------------- writing
    def _append(self, conn, instance_id, head, count, effect, actor: Actor, definition_id,
                spec, state, now) -> dict:
        entry = effect.trail
        machine = actor.system and actor.user_id == 0  # 系统: no department acted (deemed consent ...)
        acting = None if machine or (actor.department and actor.role) else self._acting_task(effect)
        row = build_event(
            prev_hash=head, seq=count + 1, instance_id=instance_id, created_at=now,
            action=entry.action, actor_id=None if machine else actor.user_id, actor_name=actor.name,
            actor_department=actor.department or (acting.department if acting else None),
            actor_role=actor.role or (acting.role if acting else None),
            on_behalf_of_id=actor.on_behalf_of, task_id=entry.task_id, from_step=entry.from_step,
            to_step=entry.to_step, opinion=entry.opinion, definition_id=definition_id,
            definition_hash=spec.content_hash, form_hash=form_hash(state.data), details=entry.details)
        row["id"] = instance_rows.insert_event(conn, row)
        return row

    @staticmethod
    def _acting_task(effect: Effect) -> TaskState | None:
        """The task the trail event is about, among those the action changed."""
        return next((t for t in effect.changed if t.id == effect.trail.task_id), None)

    def _carbon_copy(self, session, instance_id, users, actor, now) -> None:
        existing = set(session.scalars(select(CarbonCopy.user_id).where(
            CarbonCopy.instance_id == instance_id, CarbonCopy.user_id.in_(users))))
        for user in users:
            if user not in existing:
                session.add(CarbonCopy(instance_id=instance_id, user_id=user, by_id=actor.user_id,
                                       created_at=now))
        session.flush()


__all__ = ["Workflow", "ActionResult", "Request", "InvalidAction", "Conflict", "Forbidden", "NotFound"]
