"""Property test: random sequences of ALLOWED actions on the `review` definition against the real
service (SQLite), with a few refused attempts mixed in, checking the invariants after every step:

- a finished instance has no open or waiting task;
- every accepted action appends exactly one trail event, a refused one none;
- the whole trail verifies;
- the instance is always in a step of its definition, its live tasks in that step and round;
- no task is decided twice.

What is "allowed" is worked out here from the rows and the people, independently of the engine's
own permission code, so a disagreement between the two fails the test.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import empty
from tests.factories import PEOPLE, create_people
from tests.services.support import BIG, SMALL
from workflow_app.engine.errors import ActionError, Conflict, Forbidden, InvalidAction
from workflow_app.engine.runtime import Request
from workflow_app.models import ProcessInstance, Task, TrailEvent
from workflow_app.services import trail

DECIDING = ("approve", "reject", "submit", "return")
# How often each kind of action is drawn: mostly moving forward, so flows get deep (parallel
# groups, 加签 chains, resubmissions) before a withdraw, reject or void ends them.
WEIGHTS = {"approve": 16, "submit": 16, "resolve": 8, "return": 3, "add_signer": 4, "remove_signer": 3,
           "transfer": 3, "delegate": 3, "claim": 3, "withdraw": 1, "void": 1, "reject": 1}


@dataclass(frozen=True)
class Move:
    user: str
    request: Request


def allowed_moves(db, store, iid: int, ids: dict[str, int]) -> list[Move]:
    """Every action someone may take now, from the rows and the organisation alone."""
    names = {v: k for k, v in ids.items()}
    with db.read() as s:
        inst = s.get(ProcessInstance, iid)
        spec = store.spec(s, inst.definition_id)
        live = list(s.scalars(select(Task).where(Task.instance_id == iid, Task.round == inst.round,
                                                 Task.status.in_(("open", "waiting", "done")))))
    if inst.status != "running":
        return []
    submitter = names[inst.submitter_id]
    moves = [Move("econ", Request("comment", opinion="看过")),
             Move("sysadmin", Request("void", opinion="测试作废")),
             Move(submitter, Request("cc", users=(ids["sasac"],)))]
    with db.read() as s:  # 催办 is rate-limited per task (the clock is frozen: once per task)
        urged = {t for d in s.scalars(select(TrailEvent.details).where(
            TrailEvent.instance_id == iid, TrailEvent.action == "urge")) for t in d.get("tasks", ())}
    if any(t.status == "open" and t.id not in urged for t in live):
        moves.append(Move(submitter, Request("urge")))
    if not any(t.status == "done" and t.origin != "start" for t in live):
        moves.append(Move(submitter, Request("withdraw", opinion="撤回")))
    step = spec.steps[inst.current_step]
    for t in live:
        if t.origin == "added" and t.status in ("open", "waiting"):
            moves.append(Move(names[t.added_by_id], Request("remove_signer", t.id)))
        if t.status != "open":
            continue
        if t.origin == "start":
            moves.append(Move(submitter, Request("submit", t.id)))
            continue
        if t.delegate_id is not None:
            moves.append(Move(names[t.delegate_id], Request("resolve", t.id, opinion="供参考")))
            continue
        if t.assignee_id is not None:
            deciders = [names[t.assignee_id]]
        else:
            deciders = [n for n, ms in PEOPLE.items() if (t.department, t.role) in ms and n != submitter]
        busy = {x.assignee_id for x in live if x.step == t.step and x.status in ("open", "waiting")}
        for who in deciders:
            others = [n for n in PEOPLE if n not in (who, submitter)]
            moves += [Move(who, Request("approve", t.id)),
                      Move(who, Request("reject", t.id, opinion="不同意"))]
            moves += [Move(who, Request("return", t.id, target=target, opinion="退回修改"))
                      for target in step.return_to]
            moves += [Move(who, Request("transfer", t.id, user=ids[o])) for o in others[:3]]
            moves += [Move(who, Request("delegate", t.id, user=ids[o], opinion="请提意见")) for o in others[:2]]
            moves += [Move(who, Request("add_signer", t.id, user=ids[o], position=pos))
                      for o in others if ids[o] not in busy for pos in ("before", "after", "alongside")][:6]
            if t.assignee_id is None:
                moves.append(Move(who, Request("claim", t.id)))
            elif t.origin == "queue":
                moves.append(Move(who, Request("release", t.id)))
    return moves


def refused_moves(db, iid: int, ids: dict[str, int]) -> list[tuple[Move, type[ActionError]]]:
    """Attempts that must fail: the submitter deciding, a stranger deciding, a non-admin voiding."""
    with db.read() as s:
        inst = s.get(ProcessInstance, iid)
        open_ids = list(s.scalars(select(Task.id).where(Task.instance_id == iid, Task.status == "open",
                                                        Task.origin != "start")))
    if inst.status != "running":
        return [(Move("econ", Request("comment", opinion="x")), Conflict)]
    out: list[tuple[Move, type[ActionError]]] = [(Move("haijiang", Request("void", opinion="x")), Forbidden),
                                                (Move("econ", Request("withdraw")), Forbidden)]
    out += [(Move("submitter", Request("approve", tid)), Forbidden) for tid in open_ids[:1]]
    out += [(Move("haijiang", Request("approve", tid)), Forbidden) for tid in open_ids[:1]]
    return out


def snapshot(db, iid: int) -> tuple[int, int]:
    with db.read() as s:
        inst = s.get(ProcessInstance, iid)
        return inst.trail_count, s.scalar(select(func.count()).select_from(TrailEvent)
                                          .where(TrailEvent.instance_id == iid))


def check_invariants(db, store, iid: int) -> None:
    with db.read() as s:
        inst = s.get(ProcessInstance, iid)
        spec = store.spec(s, inst.definition_id)
        assert inst.current_step in spec.steps
        live = list(s.scalars(select(Task).where(Task.instance_id == iid,
                                                 Task.status.in_(("open", "waiting")))))
        if inst.status != "running":
            assert live == [], f"{inst.status} instance with live tasks {[t.id for t in live]}"
            assert spec.steps[inst.current_step].type.value == "end" or inst.status in ("withdrawn", "void")
        else:
            assert live, "a running instance waits for nobody"
            assert {(t.step, t.round) for t in live} == {(inst.current_step, inst.round)}
        decisions = s.execute(select(TrailEvent.task_id, func.count()).where(
            TrailEvent.instance_id == iid, TrailEvent.action.in_(DECIDING), TrailEvent.task_id.is_not(None))
            .group_by(TrailEvent.task_id).having(func.count() > 1)).all()
        assert decisions == [], f"tasks decided twice: {decisions}"
        for t in s.scalars(select(Task).where(Task.instance_id == iid)):
            assert (t.decision is not None) == (t.status == "done"), (t.id, t.status, t.decision)
        result = trail.verify(s)
        assert result.ok, result.broken


@pytest.fixture
def sqlite_db(db):
    if not db.is_sqlite:
        pytest.skip("the property test drives the SQLite run; PostgreSQL is covered by the other service tests")
    return db


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), amount=st.sampled_from([BIG, SMALL]))
def test_random_allowed_actions_keep_the_invariants(sqlite_db, store, workflow, clock, data, amount):
    db = sqlite_db
    empty(db)  # function-scoped fixtures run once for all examples: start every example afresh
    with db.write() as s:
        store.sync(s, clock())
        ids = create_people(s)
    with db.write() as s:
        iid = workflow.start(s, ids["submitter"], "review", amount, department="zhentou").instance_id
    check_invariants(db, store, iid)
    for _ in range(data.draw(st.integers(min_value=1, max_value=25), label="length")):
        before = snapshot(db, iid)
        if data.draw(st.integers(0, 9), label="refuse?") == 0:
            move, error = data.draw(st.sampled_from(refused_moves(db, iid, ids)), label="refused")
            with pytest.raises(error):
                with db.write() as s:
                    workflow.act(s, ids[move.user], iid, move.request)
            assert snapshot(db, iid) == before, "a refused action wrote to the trail"
        else:
            moves = allowed_moves(db, store, iid, ids)
            if not moves:
                break
            kinds = sorted({m.request.action for m in moves})
            kind = data.draw(st.sampled_from([k for k in kinds for _ in range(WEIGHTS.get(k, 2))]), label="kind")
            move = data.draw(st.sampled_from([m for m in moves if m.request.action == kind]), label="move")
            try:
                with db.write() as s:
                    workflow.act(s, ids[move.user], iid, move.request)
            except InvalidAction as exc:
                # Routing may legitimately find nobody (e.g. everyone left for a 加签 target).
                pytest.fail(f"allowed move {move} refused: {exc}")
            after = snapshot(db, iid)
            assert after == (before[0] + 1, before[1] + 1), f"{move}: {before} -> {after}"
        check_invariants(db, store, iid)
