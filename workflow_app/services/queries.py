"""Read-side queries shared by the pages and the JSON API: inbox tabs, instance detail, and who
may see what. Every list is keyed on an index (see models/process.py) and paginated by keyset
(`before_id`) so the inbox stays fast at millions of tasks."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select, tuple_
from sqlalchemy.orm import Session

from ..engine.errors import NotFound
from ..engine.spec import ProcessSpec
from ..models import CarbonCopy, ProcessInstance, Task, TrailEvent, User
from .definitions import DefinitionStore

PAGE = 50
DUE_SOON = timedelta(days=2)   # as the pages' badges (web/timeline.due_state)
LOCAL = ZoneInfo("Asia/Shanghai")
DUE_STATES = ("overdue", "soon")


@dataclass(frozen=True)
class Filters:
    """Inbox filters beside the title search. On task lists: the task's process, step,
    department (its queue) and due date; the date range is when the task arrived. On instance
    lists: the process, current step and submitting department; the range is when it started,
    and a due state means it has an open task in that state. Dates are days in Asia/Shanghai,
    both ends included."""

    search: str | None = None
    process: str | None = None
    step: str | None = None
    department: str | None = None
    due: str | None = None           # overdue | soon
    since: date | None = None
    until: date | None = None
    now: datetime | None = None      # for the due state (the services' clock)

    @property
    def active(self) -> bool:
        return any((self.process, self.step, self.department, self.due, self.since, self.until))


def _local_start(day: date) -> datetime:
    return datetime.combine(day, time.min, LOCAL)


def _due_clause(due: str, now: datetime):
    if due == "overdue":
        return and_(Task.due_at.is_not(None), Task.due_at < now)
    return and_(Task.due_at >= now, Task.due_at < now + DUE_SOON)
OVERSIGHT_ROLES = ("compliance",)
OVERSIGHT_ADMINS = ("audit",)


@dataclass
class InboxRow:
    task_id: int | None
    instance_id: int
    title: str
    process_key: str
    step: str
    status: str
    department: str | None
    role: str | None
    created_at: datetime
    due_at: datetime | None = None
    due_provisional: bool = False
    submitter: str = ""
    extra: dict = field(default_factory=dict)


def _task_rows(session: Session, query) -> list[InboxRow]:
    rows = session.execute(query).all()
    return [InboxRow(task_id=t.id, instance_id=i.id, title=i.title, process_key=i.process_key,
                     step=t.step, status=i.status, department=t.department, role=t.role,
                     created_at=t.created_at, due_at=t.due_at, due_provisional=t.due_provisional,
                     submitter=name) for t, i, name in rows]


def _task_query():
    return (select(Task, ProcessInstance, User.display_name)
            .join(ProcessInstance, ProcessInstance.id == Task.instance_id)
            .join(User, User.id == ProcessInstance.submitter_id))


def my_tasks(session: Session, user_id: int, *, before_id: int | None = None, limit: int = PAGE,
             search: str | None = None, filters: Filters | None = None) -> list[InboxRow]:
    """待办: open tasks assigned to me, or delegated to me."""
    q = _task_query().where(Task.status == "open",
                            or_(and_(Task.assignee_id == user_id, Task.delegate_id.is_(None)),
                                Task.delegate_id == user_id))
    return _task_rows(session, _page(_tasks_filtered(q, filters), Task.id, before_id, limit, search))


def queue_tasks(session: Session, memberships, *, before_id: int | None = None, limit: int = PAGE,
                search: str | None = None, filters: Filters | None = None) -> list[InboxRow]:
    """部门待认领: unclaimed tasks queued for a department role I hold."""
    pairs = list(memberships)
    if not pairs:
        return []
    q = _task_query().where(Task.status == "open", Task.assignee_id.is_(None),
                            tuple_(Task.department, Task.role).in_(pairs))
    return _task_rows(session, _page(_tasks_filtered(q, filters), Task.id, before_id, limit, search))


def done_tasks(session: Session, user_id: int, *, before_id: int | None = None, limit: int = PAGE,
               search: str | None = None, filters: Filters | None = None) -> list[InboxRow]:
    """已办: tasks I decided."""
    q = _task_query().where(Task.acted_by_id == user_id, Task.status == "done")
    return _task_rows(session, _page(_tasks_filtered(q, filters), Task.id, before_id, limit, search))


def cc_instances(session: Session, user_id: int, *, before_id: int | None = None,
                 limit: int = PAGE, search: str | None = None, filters: Filters | None = None) -> list[InboxRow]:
    q = (select(ProcessInstance, User.display_name, CarbonCopy.created_at)
         .join(CarbonCopy, CarbonCopy.instance_id == ProcessInstance.id)
         .join(User, User.id == ProcessInstance.submitter_id).where(CarbonCopy.user_id == user_id))
    q = _page(_instances_filtered(q, filters), ProcessInstance.id, before_id, limit, search)
    return [InboxRow(None, i.id, i.title, i.process_key, i.current_step, i.status, None, None, at,
                     submitter=name) for i, name, at in session.execute(q)]


def started_instances(session: Session, user_id: int, *, before_id: int | None = None,
                      limit: int = PAGE, search: str | None = None, filters: Filters | None = None) -> list[InboxRow]:
    q = (select(ProcessInstance, User.display_name).join(User, User.id == ProcessInstance.submitter_id)
         .where(ProcessInstance.submitter_id == user_id))
    q = _page(_instances_filtered(q, filters), ProcessInstance.id, before_id, limit, search)
    return [InboxRow(None, i.id, i.title, i.process_key, i.current_step, i.status, None, None,
                     i.created_at, submitter=name) for i, name in session.execute(q)]


def _tasks_filtered(q, f: Filters | None):
    if f is None:
        return q
    if f.process:
        q = q.where(ProcessInstance.process_key == f.process)
    if f.step:
        q = q.where(Task.step == f.step)
    if f.department:
        q = q.where(Task.department == f.department)
    if f.due in DUE_STATES and f.now is not None:
        q = q.where(Task.status == "open", _due_clause(f.due, f.now))
    if f.since:
        q = q.where(Task.created_at >= _local_start(f.since))
    if f.until:
        q = q.where(Task.created_at < _local_start(f.until + timedelta(days=1)))
    return q


def _instances_filtered(q, f: Filters | None):
    if f is None:
        return q
    if f.process:
        q = q.where(ProcessInstance.process_key == f.process)
    if f.step:
        q = q.where(ProcessInstance.current_step == f.step)
    if f.department:
        q = q.where(ProcessInstance.submitter_department == f.department)
    if f.due in DUE_STATES and f.now is not None:
        q = q.where(exists(select(Task.id).where(Task.instance_id == ProcessInstance.id, Task.status == "open",
                                                 _due_clause(f.due, f.now))))
    if f.since:
        q = q.where(ProcessInstance.created_at >= _local_start(f.since))
    if f.until:
        q = q.where(ProcessInstance.created_at < _local_start(f.until + timedelta(days=1)))
    return q


def _page(q, key, before_id, limit, search):
    if before_id:
        q = q.where(key < before_id)
    if search:
        like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(ProcessInstance.title.like(like, escape="\\"))
    return q.order_by(key.desc()).limit(min(max(limit, 1), 200))


# ---------------------------------------------------------------- instance detail
@dataclass
class InstanceView:
    instance: ProcessInstance
    spec: ProcessSpec
    tasks: list[Task]            # every task of every round, oldest first
    events: list[TrailEvent]     # the trail, in order
    users: dict[int, str]        # id -> display name for everyone mentioned

    @property
    def open_tasks(self) -> list[Task]:
        return [t for t in self.tasks if t.status in ("open", "waiting") and t.round == self.instance.round]

    def path_taken(self) -> list[str]:
        steps: list[str] = []
        for e in self.events:
            for s in (e.from_step, e.to_step):
                if s and (not steps or steps[-1] != s):
                    steps.append(s)
        return steps


def can_view(session: Session, user_id: int, memberships, admin_role: str | None,
             instance: ProcessInstance, coordinators=()) -> bool:
    """Submitter, anyone who holds or held a task on it, anyone holding the department role a
    task was queued for (claimed or not: the colleague who lost a claim race sees who won, and
    gets a conflict rather than a 404), the heads of a department with a task on it (they are
    escalated to and grant its 延期), the heads of the coordinating body (`coordinators`: the
    departments marked `coordinator: true`; the ladder's `coordinator` rung escalates any
    application to them, and they may 催办 it), CC'd people, compliance reviewers and the audit
    administrator. Everyone else gets 404 (not 403), so ids cannot be probed."""
    if instance.submitter_id == user_id or admin_role in OVERSIGHT_ADMINS:
        return True
    if coordinators and any(d in coordinators and role == "head" for d, role in memberships):
        return True
    if any(role in OVERSIGHT_ROLES for _d, role in memberships):
        return True
    pairs = list(memberships)
    headed = sorted({d for d, role in pairs if role == "head"})
    involved = select(Task.id).where(Task.instance_id == instance.id, or_(
        Task.assignee_id == user_id, Task.delegate_id == user_id, Task.acted_by_id == user_id,
        *([and_(or_(Task.assignee_id.is_(None), Task.origin == "queue"),
                tuple_(Task.department, Task.role).in_(pairs))] if pairs else []),
        *([Task.department.in_(headed)] if headed else [])))
    if session.scalar(select(exists(involved))):
        return True
    return bool(session.scalar(select(exists(select(CarbonCopy.id).where(
        CarbonCopy.instance_id == instance.id, CarbonCopy.user_id == user_id)))))


def takes_part(session: Session, user_id: int, memberships, instance: ProcessInstance,
               coordinators=()) -> bool:
    """May act on it (comment, 抄送, 催办, decide ...): can see it for a reason other than
    oversight. Compliance reviewers and the audit administrator read every application but are
    read-only: they take part only where they would see it without that role. The coordinating
    body's heads take part (they are escalated to and may 催办)."""
    own = [(d, r) for d, r in memberships if r not in OVERSIGHT_ROLES]
    return can_view(session, user_id, own, None, instance, coordinators)


def instance_view(session: Session, store: DefinitionStore, instance_id: int, *, user_id: int,
                  memberships, admin_role: str | None) -> InstanceView:
    instance = session.get(ProcessInstance, instance_id)
    if instance is None or not can_view(session, user_id, memberships, admin_role, instance,
                                        frozenset(store.organisation.coordinators())):
        raise NotFound("no such application")
    spec = store.spec(session, instance.definition_id)
    tasks = list(session.scalars(select(Task).where(Task.instance_id == instance_id)
                                 .order_by(Task.round, Task.seq, Task.id)))
    events = list(session.scalars(select(TrailEvent).where(TrailEvent.instance_id == instance_id)
                                  .order_by(TrailEvent.seq)))
    ids = {instance.submitter_id} | {i for t in tasks for i in (t.assignee_id, t.acted_by_id, t.delegate_id) if i} \
        | {e.on_behalf_of_id for e in events if e.on_behalf_of_id}
    users = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())
    return InstanceView(instance, spec, tasks, events, users)
