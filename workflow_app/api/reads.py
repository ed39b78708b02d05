"""Read-side queries only the API needs: an instance with its tasks and trail as plain data, the
stored definitions, keyset pages. Who may see an instance is decided by
`services.queries.can_view` (shared with the pages); this module only loads and shapes."""
from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine.errors import NotFound
from ..models import ProcessDefinition, ProcessInstance, Task, TrailEvent, User
from ..services.definitions import DefinitionStore
from ..services.queries import InboxRow, can_view
from ..services.tokens import TokenIdentity

_TASK_FIELDS = ("id", "step", "branch", "round", "seq", "origin", "status", "department", "role",
                "assignee_id", "delegate_id", "added_by_id", "decision", "opinion", "acted_by_id",
                "created_at", "completed_at", "due_at", "due_provisional")
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
    if instance is None or not can_view(session, user_id, memberships, admin_role, instance):
        raise NotFound("no such application")
    return instance


def instance_detail(session: Session, store: DefinitionStore, instance_id: int) -> dict:
    """The instance, every task of every round (oldest first) and its trail, as plain data.
    Callers check visibility first (`visible_instance`)."""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound("no such application")
    spec = store.spec(session, instance.definition_id)
    tasks = list(session.scalars(select(Task).where(Task.instance_id == instance_id)
                                 .order_by(Task.round, Task.seq, Task.id)))
    events = list(session.scalars(select(TrailEvent).where(TrailEvent.instance_id == instance_id)
                                  .order_by(TrailEvent.seq)))
    ids = {instance.submitter_id} | {t.assignee_id for t in tasks if t.assignee_id}
    names = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())
    return {
        "id": instance.id, "process_key": instance.process_key, "definition_id": instance.definition_id,
        "definition_version": spec.version, "title": instance.title, "status": instance.status,
        "current_step": instance.current_step, "round": instance.round, "version": instance.version,
        "submitter_id": instance.submitter_id, "submitter_name": names.get(instance.submitter_id, ""),
        "submitter_department": instance.submitter_department, "parent_id": instance.parent_id,
        "data": dict(instance.form_data or {}), "created_at": instance.created_at,
        "updated_at": instance.updated_at, "ended_at": instance.ended_at,
        "tasks": [{**{f: getattr(t, f) for f in _TASK_FIELDS},
                   "assignee_name": names.get(t.assignee_id) if t.assignee_id else None} for t in tasks],
        "trail": [{f: getattr(e, f) for f in _EVENT_FIELDS} for e in events],
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
