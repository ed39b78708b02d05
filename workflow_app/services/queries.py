"""Read-side queries shared by the pages and the JSON API: inbox tabs, instance detail, and who
may see what. Every list is keyed on an index (see models/process.py) and paginated by keyset
(`before_id`) so the inbox stays fast at millions of tasks."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, or_, select, tuple_
from sqlalchemy.orm import Session

from ..engine.errors import NotFound
from ..engine.spec import ProcessSpec
from ..models import CarbonCopy, ProcessInstance, Task, TrailEvent, User
from .definitions import DefinitionStore

PAGE = 50
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
             search: str | None = None) -> list[InboxRow]:
    """待办: open tasks assigned to me, or delegated to me."""
    q = _task_query().where(Task.status == "open",
                            or_(and_(Task.assignee_id == user_id, Task.delegate_id.is_(None)),
                                Task.delegate_id == user_id))
    return _task_rows(session, _page(q, Task.id, before_id, limit, search))


def queue_tasks(session: Session, memberships, *, before_id: int | None = None, limit: int = PAGE,
                search: str | None = None) -> list[InboxRow]:
    """部门待认领: unclaimed tasks queued for a department role I hold."""
    pairs = list(memberships)
    if not pairs:
        return []
    q = _task_query().where(Task.status == "open", Task.assignee_id.is_(None),
                            tuple_(Task.department, Task.role).in_(pairs))
    return _task_rows(session, _page(q, Task.id, before_id, limit, search))


def done_tasks(session: Session, user_id: int, *, before_id: int | None = None, limit: int = PAGE,
               search: str | None = None) -> list[InboxRow]:
    """已办: tasks I decided."""
    q = _task_query().where(Task.acted_by_id == user_id, Task.status == "done")
    return _task_rows(session, _page(q, Task.id, before_id, limit, search))


def cc_instances(session: Session, user_id: int, *, before_id: int | None = None,
                 limit: int = PAGE, search: str | None = None) -> list[InboxRow]:
    q = (select(ProcessInstance, User.display_name, CarbonCopy.created_at)
         .join(CarbonCopy, CarbonCopy.instance_id == ProcessInstance.id)
         .join(User, User.id == ProcessInstance.submitter_id).where(CarbonCopy.user_id == user_id))
    q = _page(q, ProcessInstance.id, before_id, limit, search)
    return [InboxRow(None, i.id, i.title, i.process_key, i.current_step, i.status, None, None, at,
                     submitter=name) for i, name, at in session.execute(q)]


def started_instances(session: Session, user_id: int, *, before_id: int | None = None,
                      limit: int = PAGE, search: str | None = None) -> list[InboxRow]:
    q = (select(ProcessInstance, User.display_name).join(User, User.id == ProcessInstance.submitter_id)
         .where(ProcessInstance.submitter_id == user_id))
    q = _page(q, ProcessInstance.id, before_id, limit, search)
    return [InboxRow(None, i.id, i.title, i.process_key, i.current_step, i.status, None, None,
                     i.created_at, submitter=name) for i, name in session.execute(q)]


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
    """Submitter, anyone who holds or held a task on it (or could claim one), the heads of a
    department with a task on it (they are escalated to and grant its 延期), the heads of the
    coordinating body (`coordinators`: the departments marked `coordinator: true`; the ladder's
    `coordinator` rung escalates any application to them, and they may 催办 it), CC'd people,
    compliance reviewers and the audit administrator. Everyone else gets 404 (not 403), so ids
    cannot be probed."""
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
        *( [and_(Task.assignee_id.is_(None), tuple_(Task.department, Task.role).in_(pairs))] if pairs else []),
        *( [Task.department.in_(headed)] if headed else [])))
    if session.scalar(select(exists(involved))):
        return True
    return bool(session.scalar(select(exists(select(CarbonCopy.id).where(
        CarbonCopy.instance_id == instance.id, CarbonCopy.user_id == user_id)))))


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
