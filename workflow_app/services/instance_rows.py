"""The rows one action reads and writes, as prepared statements (`workflow_app.prepared`).

`services/workflow.py` owns the order of work and the rules (lock first, read the round, let the
engine decide, write everything, one trail event); this module owns the SQL of each step:

* `lock` — the instance row, `SELECT … FOR UPDATE` on PostgreSQL (SQLite's `BEGIN IMMEDIATE`
  already serialises writers), as a `LockedInstance`;
* `round_tasks`, `decided_steps`, `recent_urges` — what the engine needs to decide, read AFTER
  the lock (in READ COMMITTED a statement that waited for the lock would otherwise see the
  round as it was before a colleague's decision);
* `write_tasks` — changed tasks in one executemany UPDATE, new tasks INSERTed with their ids;
* `insert_event` — the trail row, hash chain columns included (`trail.build_event`);
* `update_instance` — the instance's new values with the version check; the ORM's copy of the
  instance, if this session holds one, is expired so it is read again.

Each statement is compiled once per dialect and run on the transaction's connection.
"""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, and_, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from ..engine.effects import Effect
from ..engine.permissions import NOT_DECIDING
from ..engine.state import Origin, TaskState, TaskStatus
from ..engine.trail import HASHED_FIELDS
from ..models import ProcessDefinition, ProcessInstance, Task, TrailEvent
from ..prepared import Prepared

_I, _T, _E = ProcessInstance.__table__, Task.__table__, TrailEvent.__table__
_D = ProcessDefinition.__table__


class LockedInstance(NamedTuple):
    """The instance row as an action needs it, read under the lock."""

    id: int
    definition_id: int
    status: str
    current_step: str
    round: int
    form_data: dict | None
    submitter_id: int
    submitter_department: str
    parent_id: int | None
    version: int
    trail_head: str
    trail_count: int
    title: str
    definition_hash: str  # the definition's content hash: the key of the compiled-spec cache


# FOR UPDATE OF the instance only: the definition row is shared by every instance of it.
_LOCK = Prepared(select(*[_I.c[f] for f in LockedInstance._fields[:-1]], _D.c.content_hash)
                 .select_from(_I.join(_D, _D.c.id == _I.c.definition_id))
                 .where(_I.c.id == bindparam("instance_id")).with_for_update(of=_I), row=LockedInstance)


def lock(conn: Connection, instance_id: int) -> LockedInstance | None:
    return _LOCK.one_or_none(conn, {"instance_id": instance_id})


_TASK_COLUMNS = ("id", "step", "branch", "round", "seq", "origin", "status", "department", "role",
                 "assignee_id", "delegate_id", "added_by_id", "decision", "opinion", "acted_by_id",
                 "completed_at", "deadline_days", "due_at", "due_provisional", "paused_at",
                 "next_reminder_at", "escalation_level")
_ROUND_TASKS = Prepared(select(*[_T.c[f] for f in _TASK_COLUMNS])
                        .where(_T.c.instance_id == bindparam("instance_id"), _T.c.round == bindparam("round"))
                        .order_by(_T.c.seq, _T.c.id))


def round_tasks(conn: Connection, instance_id: int, round_: int) -> list[TaskState]:
    return [TaskState(step=step, branch=branch, round=rnd, seq=seq, origin=Origin(origin),
                      status=TaskStatus(status), department=department, role=role, assignee=assignee,
                      delegate=delegate, added_by=added_by, decision=decision, opinion=opinion,
                      acted_by=acted_by, completed_at=completed_at, deadline_days=deadline_days, id=id_,
                      due_at=due_at, due_provisional=bool(due_provisional), paused_at=paused_at,
                      next_reminder_at=next_reminder_at, escalation_level=escalation_level)
            for (id_, step, branch, rnd, seq, origin, status, department, role, assignee, delegate,
                 added_by, decision, opinion, acted_by, completed_at, deadline_days, due_at,
                 due_provisional, paused_at, next_reminder_at, escalation_level)
            in _ROUND_TASKS.all(conn, {"instance_id": instance_id, "round": round_})]


# Decisions that count: the `!=` chain equals NOT IN (NULL decisions excluded by both) without
# an expanding parameter.
_DECIDED = Prepared(select(_T.c.assignee_id, _T.c.acted_by_id, _T.c.step).where(
    _T.c.instance_id == bindparam("instance_id"), _T.c.status == "done",
    and_(*(_T.c.decision != value for value in sorted(NOT_DECIDING)))))


def decided_steps(conn: Connection, instance_id: int) -> dict[int, frozenset[str]]:
    """Who decided which step, in every round: the task's owner and whoever pressed the button
    (a stand-in acting for them); approve/reject and custom actions count."""
    by_user: dict[int, set[str]] = {}
    for owner, acted_by, step in _DECIDED.all(conn, {"instance_id": instance_id}):
        for user in {owner, acted_by} - {None}:
            by_user.setdefault(user, set()).add(step)
    return {u: frozenset(s) for u, s in by_user.items()}


_URGES = Prepared(select(_E.c.details, _E.c.created_at).where(
    _E.c.instance_id == bindparam("instance_id"), _E.c.action == "urge",
    _E.c.created_at > bindparam("since", type_=_E.c.created_at.type)))


def recent_urges(conn: Connection, instance_id: int, since: datetime) -> dict[int, datetime]:
    """Task id -> the last 催办 of it after `since`."""
    last: dict[int, datetime] = {}
    for details, at in _URGES.all(conn, {"instance_id": instance_id, "since": since}):
        for task_id in (details or {}).get("tasks", ()):
            last[task_id] = max(at, last.get(task_id, at))
    return last


_CHANGED_FIELDS = ("status", "assignee_id", "delegate_id", "decision", "opinion", "acted_by_id",
                   "completed_at", "origin", "due_at", "due_provisional", "paused_at",
                   "next_reminder_at", "escalation_level")
_UPDATE_TASK = Prepared(update(_T).where(_T.c.id == bindparam("task_id"))
                        .values({f: bindparam(f"p_{f}", type_=_T.c[f].type) for f in _CHANGED_FIELDS}))
_ADDED_FIELDS = ("instance_id", "step", "branch", "round", "seq", "origin", "status", "department",
                 "role", "assignee_id", "added_by_id", "created_at", "deadline_days", "due_at",
                 "due_provisional", "paused_at", "next_reminder_at", "escalation_level")
_INSERT_TASK = Prepared(insert(_T).values({f: bindparam(f"p_{f}", type_=_T.c[f].type) for f in _ADDED_FIELDS})
                        .returning(_T.c.id))


def write_tasks(conn: Connection, instance_id: int, effect: Effect, now: datetime) -> tuple[int, ...]:
    """Write the effect's changed tasks and insert its new ones (their ids are set on them)."""
    changed = [t for t in effect.changed if t.id is not None]
    if changed:
        _UPDATE_TASK.many(conn, [
            dict(task_id=t.id, p_status=t.status.value, p_assignee_id=t.assignee, p_delegate_id=t.delegate,
                 p_decision=t.decision, p_opinion=t.opinion, p_acted_by_id=t.acted_by,
                 p_completed_at=t.completed_at if t.status is not TaskStatus.cancelled else now,
                 p_origin=t.origin.value, p_due_at=t.due_at, p_due_provisional=t.due_provisional,
                 p_paused_at=t.paused_at,
                 p_next_reminder_at=t.next_reminder_at if t.status is TaskStatus.open else None,
                 p_escalation_level=t.escalation_level) for t in changed])
    opened = []
    for t in effect.added:
        t.id = _INSERT_TASK.scalar(conn, dict(
            p_instance_id=instance_id, p_step=t.step, p_branch=t.branch, p_round=t.round, p_seq=t.seq,
            p_origin=t.origin.value, p_status=t.status.value, p_department=t.department, p_role=t.role,
            p_assignee_id=t.assignee, p_added_by_id=t.added_by, p_created_at=now,
            p_deadline_days=t.deadline_days, p_due_at=t.due_at, p_due_provisional=t.due_provisional,
            p_paused_at=t.paused_at, p_next_reminder_at=t.next_reminder_at,
            p_escalation_level=t.escalation_level))
        opened.append(t.id)
    return tuple(opened)


_EVENT_FIELDS = HASHED_FIELDS + ("prev_hash", "hash")
_INSERT_EVENT = Prepared(insert(_E).values({f: bindparam(f"p_{f}", type_=_E.c[f].type) for f in _EVENT_FIELDS})
                         .returning(_E.c.id))


def insert_event(conn: Connection, row: dict) -> int:
    """Insert a trail row made by `trail.build_event` (chain columns included); its id."""
    return _INSERT_EVENT.scalar(conn, {f"p_{f}": row[f] for f in _EVENT_FIELDS})


_UPDATES: dict[tuple[frozenset[str], bool], Prepared] = {}


def _update_statement(columns: frozenset[str], checked: bool) -> Prepared:
    found = _UPDATES.get((columns, checked))
    if found is None:
        where = [_I.c.id == bindparam("instance_id")]
        if checked:
            where.append(_I.c.version == bindparam("expected_version"))
        statement = update(_I).where(*where).values(
            {c: bindparam(f"p_{c}", type_=_I.c[c].type) for c in sorted(columns)})
        found = _UPDATES[(columns, checked)] = Prepared(statement)
    return found


def update_instance(session: Session, conn: Connection, instance_id: int, values: dict, *,
                    expected_version: int | None) -> int:
    """UPDATE the instance (with `version = expected_version` unless None); the row count. The
    statement is prepared once per set of columns. The session's ORM copy, if any, is expired."""
    params = {f"p_{k}": v for k, v in values.items()}
    params["instance_id"] = instance_id
    if expected_version is not None:
        params["expected_version"] = expected_version
    done = _update_statement(frozenset(values), expected_version is not None).rowcount(conn, params)
    if len(session.identity_map):  # usually empty on the action path: no key to build
        held = session.identity_map.get(identity_key(ProcessInstance, instance_id))
        if held is not None:
            session.expire(held, list(values))
    return done


__all__ = ["LockedInstance", "lock", "round_tasks", "decided_steps", "recent_urges", "write_tasks",
           "insert_event", "update_instance"]
