"""Read-side queries only the API needs: an instance with its tasks and trail as plain data, the
stored definitions, keyset pages. Who may see an instance is decided by
`services.queries.can_view` (shared with the pages); this module only loads and shapes."""
from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..container import services
from ..database import core_connection
from ..engine.errors import NotFound
from ..models import ProcessDefinition, ProcessInstance, Task, TrailEvent, User
from ..services.queries import InboxRow, can_view
from ..services.tokens import TokenIdentity

_TASK_FIELDS = ("id", "step", "branch", "round", "seq", "origin", "status", "department", "role",
                "assignee_id", "delegate_id", "added_by_id", "decision", "opinion", "acted_by_id",
                "created_at", "completed_at", "due_at", "due_provisional", "paused_at")
_EVENT_FIELDS = ("id", "seq", "created_at", "action", "actor_id", "actor_name", "actor_department",
                 "actor_role", "on_behalf_of_id", "task_id", "from_step", "to_step", "opinion",
                 "definition_hash", "details", "hash")


def visible_instance(session: Session, who: TokenIdentity, instance_id: int) -> ProcessInstance:
    """The instance if `who` may see it; NotFound (404) otherwise — never a 403 that would confirm
    the id exists."""
    return _visible(session, instance_id, who.user_id, who.memberships, who.admin_role)


def visible_to_user(session: Session, user_id: int, instance_id: int) -> ProcessInstance:
    """The same check for another user (the absent colleague a stand-in acts for)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such application")
    return _visible(session, instance_id, user.id, [(m.department_code, m.role) for m in user.memberships],
                    user.admin_role)


def _visible(session, instance_id, user_id, memberships, admin_role) -> ProcessInstance:
    instance = session.get(ProcessInstance, instance_id)
    coordinators = frozenset(services().store.organisation.coordinators())
    if instance is None or not can_view(session, user_id, memberships, admin_role, instance, coordinators):
        raise NotFound("no such application")
    return instance


_I, _T, _E, _U = (ProcessInstance.__table__.c, Task.__table__.c, TrailEvent.__table__.c,
                  User.__table__.c)
_SUBMITTER, _ASSIGNEE = User.__table__.alias("submitter"), User.__table__.alias("assignee")
_INSTANCE_FIELDS = ("id", "process_key", "definition_id", "title", "status", "current_step", "round",
                    "version", "submitter_id", "submitter_department", "parent_id", "subject_ref",
                    "form_data", "created_at", "updated_at", "ended_at")
# Three statements, built once, plain rows (Core): the instance with its submitter's name, every
# task with its assignee's name, the trail.
# The definition's declared version comes with the instance (a join): no spec is compiled and no
# statement added to build a response.
_D = ProcessDefinition.__table__.c
_DETAIL_INSTANCE = (select(*[_I[f] for f in _INSTANCE_FIELDS], _D.version, _SUBMITTER.c.display_name)
                    .select_from(ProcessInstance.__table__
                                 .join(ProcessDefinition.__table__, _D.id == _I.definition_id)
                                 .outerjoin(_SUBMITTER, _SUBMITTER.c.id == _I.submitter_id))
                    .where(_I.id == bindparam("iid")))
_DETAIL_TASKS = (select(*[_T[f] for f in _TASK_FIELDS], _ASSIGNEE.c.display_name)
                 .select_from(Task.__table__.outerjoin(_ASSIGNEE, _ASSIGNEE.c.id == _T.assignee_id))
                 .where(_T.instance_id == bindparam("iid")).order_by(_T.round, _T.seq, _T.id))
_DETAIL_EVENTS = (select(*[_E[f] for f in _EVENT_FIELDS]).where(_E.instance_id == bindparam("iid"))
                  .order_by(_E.seq))


def instance_detail(session: Session, instance_id: int) -> dict:
    """The instance, every task of every round (oldest first) and its trail, as plain data.
    Callers check visibility first (`visible_instance`)."""
    conn = core_connection(session)
    params = {"iid": instance_id}
    row = conn.execute(_DETAIL_INSTANCE, params).one_or_none()
    if row is None:
        raise NotFound("no such application")
    instance = dict(zip(_INSTANCE_FIELDS, row))
    n = len(_TASK_FIELDS)
    tasks = [{**dict(zip(_TASK_FIELDS, t[:n])), "assignee_name": t[n] if t.assignee_id else None}
             for t in conn.execute(_DETAIL_TASKS, params)]
    events = [dict(zip(_EVENT_FIELDS, e)) for e in conn.execute(_DETAIL_EVENTS, params)]
    return {
        **{f: instance[f] for f in _INSTANCE_FIELDS if f != "form_data"},
        "definition_version": row[-2], "submitter_name": row[-1] or "",
        "data": dict(instance["form_data"] or {}), "tasks": tasks, "trail": events,
    }


def definitions(session: Session) -> list[dict]:
    rows = session.scalars(select(ProcessDefinition).order_by(ProcessDefinition.key,
                                                              ProcessDefinition.revision))
    return [{"id": d.id, "key": d.key, "revision": d.revision, "version": d.version,
             "hash": d.content_hash, "latest": d.is_latest, "title_zh": d.title_zh,
             "title_en": d.title_en or "", "synced_at": d.synced_at} for d in rows]


def page(rows: list[InboxRow], limit: int, *, key: str) -> dict:
    """One keyset page. `key` is the id the list is ordered by (task_id or instance_id); a full
    page may have a next one, a short page is the last."""
    items = [asdict(r) for r in rows]
    return {"items": items, "next_before_id": items[-1][key] if len(items) == limit and items else None}
