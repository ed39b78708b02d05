"""PROTOTYPE of the service-layer changes proposed in bench/README.md ("Findings"), to measure
what they would buy. NOT the product, and not part of the default run (`--only proposal`).

`ProposedWorkflow` subclasses the product's `Workflow` and changes only HOW the same statements
are built and sent, never what is written, what is checked or in which order rows are locked:

  P1  the actor and their memberships in ONE Core statement (was: `session.get(User)` + the
      `selectin` load of `User.memberships`: two statements and a full ORM entity);
  P2  every hot-path statement built once at import, with `bindparam()`s (was: `select()` /
      `update()` / `insert()` rebuilt and re-keyed for the compiled cache on every call);
  P3  everything executed on `session.connection()` against Core tables (was: ORM-enabled
      `session.execute`, incl. the bulk-UPDATE path with `synchronize_session` evaluation);
  P4  (PostgreSQL) no `pool_pre_ping`: one `SELECT 1` round trip less per transaction.

The engine (`Runtime`, permissions, routing, transitions, calendar, hash chain) is the product's,
unchanged. The copied method bodies follow the product as of this benchmark; if the product's
private methods change, this prototype may fail and is then reported as an error.
"""
from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from workflow_app.engine.errors import Conflict, Forbidden
from workflow_app.engine.runtime import Runtime
from workflow_app.engine.state import Actor, InstanceState, InstanceStatus, Origin, TaskState, TaskStatus
from workflow_app.engine.trail import form_hash
from workflow_app.models import Membership, ProcessInstance, Task, TrailEvent, User
from workflow_app.services import workflow as product
from workflow_app.services.directory import SqlDirectory
from workflow_app.services.trail import build_event

_TASKS, _TRAIL, _INSTANCES = Task.__table__, TrailEvent.__table__, ProcessInstance.__table__

_U, _M = User.__table__.c, Membership.__table__.c
_ACTOR = (select(_U.id, _U.display_name, _U.is_active, _U.admin_role, _M.department_code, _M.role)
          .select_from(User.__table__.outerjoin(Membership.__table__, _M.user_id == _U.id))
          .where(_U.id == bindparam("uid")))
_LOCK = (select(*[_INSTANCES.c[n] for n in ("id", "definition_id", "status", "current_step", "round", "form_data",
                                            "submitter_id", "submitter_department", "parent_id", "version",
                                            "trail_head", "trail_count")])
         .where(_INSTANCES.c.id == bindparam("iid")).with_for_update())
_ROUND_TASKS = (select(*[_TASKS.c[n] for n in product._TASK_COLUMNS])
                .where(_TASKS.c.instance_id == bindparam("iid"), _TASKS.c.round == bindparam("rnd"))
                .order_by(_TASKS.c.seq, _TASKS.c.id))
_MEMBERS = (select(_M.user_id).select_from(Membership.__table__.join(User.__table__, _U.id == _M.user_id))
            .where(_M.department_code == bindparam("dept"), _M.role == bindparam("role"), _U.is_active.is_(True))
            .order_by(_M.rank, _M.user_id))
_MEMBER_DEPTS = select(_M.department_code).where(_M.user_id == bindparam("uid"))
_CLOSE = update(_TASKS).where(_TASKS.c.id == bindparam("tid")).values(
    status=bindparam("status"), assignee_id=bindparam("assignee"), delegate_id=bindparam("delegate"),
    decision=bindparam("decision"), opinion=bindparam("opinion"), acted_by_id=bindparam("acted_by"),
    completed_at=bindparam("completed_at"), origin=bindparam("origin"))
_OPEN_ONE = insert(_TASKS).returning(_TASKS.c.id)
_OPEN_MANY = insert(_TASKS).returning(_TASKS.c.id, sort_by_parameter_order=True)
_APPEND = insert(_TRAIL).returning(_TRAIL.c.id)
_UPDATES: dict[frozenset, object] = {}


def _instance_update(keys: frozenset):
    stmt = _UPDATES.get(keys)
    if stmt is None:
        stmt = _UPDATES[keys] = (update(_INSTANCES)
                                 .where(_INSTANCES.c.id == bindparam("w_id"), _INSTANCES.c.version == bindparam("w_version"))
                                 .values({k: bindparam("v_" + k) for k in sorted(keys)}))
    return stmt


class FastDirectory(SqlDirectory):
    def _members(self, department: str, role: str) -> tuple[int, ...]:
        return tuple(self.session.connection().execute(_MEMBERS, {"dept": department, "role": role}).scalars())

    def _user_groups(self, user_id: int) -> frozenset[str]:
        rows = self.session.connection().execute(_MEMBER_DEPTS, {"uid": user_id}).scalars()
        return frozenset(self.org.group_of(d) for d in rows)


def load_actor_fast(session, user_id: int, *, department=None, role=None) -> Actor:
    rows = session.connection().execute(_ACTOR, {"uid": user_id}).all()
    if not rows or not rows[0].is_active:
        raise Forbidden("unknown or disabled user")
    memberships = frozenset((r.department_code, r.role) for r in rows if r.department_code is not None)
    if department is not None and (department, role) not in memberships:
        raise Forbidden(f"you are not a {role} of {department}")
    first = rows[0]
    return Actor(user_id=first.id, name=first.display_name, memberships=memberships,
                 department=department, role=role, admin_role=first.admin_role)


class ProposedWorkflow(product.Workflow):
    def act(self, session, user_id, instance_id, request, *, department=None, role=None, on_behalf_of=None):
        now = self.clock()
        actor = load_actor_fast(session, user_id, department=department, role=role)
        if on_behalf_of is not None:
            actor = self._substitute(session, actor, on_behalf_of, now)
        return self._act(session, instance_id, request, actor, now)

    def _act(self, session, instance_id, request, actor, now):
        self._check_people(session, request)
        if request.action == "void":
            return super()._act(session, instance_id, request, actor, now)
        row = self._lock(session, instance_id)
        spec = self.store.spec(session, row.definition_id)
        runtime = Runtime(FastDirectory(session, self.store.organisation))
        state = self._state(session, row, spec)
        effect = runtime.act(state, request, actor, now)
        return self._commit_effect(session, runtime, row, spec, state, effect, actor, now)

    def _lock(self, session, instance_id):
        row = session.connection().execute(_LOCK, {"iid": instance_id}).one_or_none()
        if row is None:
            raise product.NotFound("no such application")
        return row

    def _state(self, session, row, spec):
        if spec.rules.distinct_deciders:
            return super()._state(session, row, spec)
        tasks = [TaskState(step=t.step, branch=t.branch, round=t.round, seq=t.seq, origin=Origin(t.origin),
                           status=TaskStatus(t.status), department=t.department, role=t.role,
                           assignee=t.assignee_id, delegate=t.delegate_id, added_by=t.added_by_id,
                           decision=t.decision, opinion=t.opinion, acted_by=t.acted_by_id,
                           completed_at=t.completed_at, deadline_days=t.deadline_days, id=t.id)
                 for t in session.connection().execute(_ROUND_TASKS, {"iid": row.id, "rnd": row.round})]
        return InstanceState(spec=spec, status=InstanceStatus(row.status), current_step=row.current_step,
                             round=row.round, data=dict(row.form_data or {}), submitter=row.submitter_id,
                             submitter_department=row.submitter_department, tasks=tasks, id=row.id,
                             parent_id=row.parent_id, decided_steps={})

    def _commit_effect(self, session, runtime, row, spec, state, effect, actor, now):
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
        params = {"v_" + k: v for k, v in values.items()}
        params.update(w_id=row.id, w_version=row.version)
        done = session.connection().execute(_instance_update(frozenset(values)), params)
        if done.rowcount != 1:
            raise Conflict("the application changed while you were acting; reload and try again")
        if effect.cc:
            self._carbon_copy(session, row.id, effect.cc, actor, now)
        result = product.ActionResult(row.id, state.status.value, state.current_step, event["id"], opened)
        self._follow_up(session, runtime, state, effect, actor, now)
        return result

    def _write_tasks(self, session, instance_id, effect, now):
        conn = session.connection()
        changed = [t for t in effect.changed if t.id is not None]
        if changed:
            conn.execute(_CLOSE, [dict(tid=t.id, status=t.status.value, assignee=t.assignee, delegate=t.delegate,
                                       decision=t.decision, opinion=t.opinion, acted_by=t.acted_by,
                                       completed_at=t.completed_at if t.status is not TaskStatus.cancelled else now,
                                       origin=t.origin.value) for t in changed])
        if not effect.added:
            return ()
        rows = []
        for t in effect.added:
            due_at, provisional = self._due(now, t.deadline_days)
            rows.append(dict(instance_id=instance_id, step=t.step, branch=t.branch, round=t.round, seq=t.seq,
                             origin=t.origin.value, status=t.status.value, department=t.department, role=t.role,
                             assignee_id=t.assignee, added_by_id=t.added_by, created_at=now,
                             deadline_days=t.deadline_days, due_at=due_at, due_provisional=provisional,
                             escalation_level=0, delegate_id=None))
        if len(rows) == 1:
            ids = [conn.execute(_OPEN_ONE, rows[0]).scalar_one()]
        else:
            ids = conn.execute(_OPEN_MANY, rows).scalars().all()
        for task, new_id in zip(effect.added, ids):
            task.id = new_id
        return tuple(ids)

    def _append(self, session, instance_id, head, count, effect, actor, definition_id, spec, state, now):
        entry = effect.trail
        row = build_event(
            prev_hash=head, seq=count + 1, instance_id=instance_id, created_at=now,
            action=entry.action, actor_id=None if actor.system and actor.user_id == 0 else actor.user_id,
            actor_name=actor.name, actor_department=actor.department or self._acting_department(effect),
            actor_role=actor.role or self._acting_role(effect), on_behalf_of_id=actor.on_behalf_of,
            task_id=entry.task_id, from_step=entry.from_step, to_step=entry.to_step, opinion=entry.opinion,
            definition_id=definition_id, definition_hash=spec.content_hash, form_hash=form_hash(state.data),
            details=entry.details)
        row["id"] = session.connection().execute(_APPEND, row).scalar_one()
        return row


def without_pre_ping(db) -> None:
    """P4: the pool stops sending `SELECT 1` before every transaction (PostgreSQL)."""
    db.engine.pool._pre_ping = False  # prototype only; the product would pass pool_pre_ping=False
