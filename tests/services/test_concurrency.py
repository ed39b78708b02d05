"""Two people acting on the same task at the same moment: exactly one succeeds, the others get a
Conflict and write nothing. Real concurrent connections — threads, each with its own Session from
`db.write()`, released together by a Barrier right before they act.

PostgreSQL runs need TEST_DATABASE_URL (they are skipped, saying so, without it); the SQLite
variant always runs (BEGIN IMMEDIATE serialises its writers)."""
from __future__ import annotations

import os
import threading

import pytest

from tests.factories import PEOPLE
from tests.services.support import BIG, SMALL, act, events, instance, open_task, setup, start, tasks
from workflow_app.engine.errors import Conflict
from workflow_app.engine.runtime import Request
from workflow_app.services import trail

REVIEWERS = [f"reviewer{i}" for i in range(8)]
CROWD = {**PEOPLE, **{name: [("invest_promo", "reviewer")] for name in REVIEWERS}}


@pytest.fixture
def pg(db):
    if db.is_sqlite:
        pytest.skip("PostgreSQL-only test (this is the SQLite run)" if os.environ.get("TEST_DATABASE_URL")
                    else "needs PostgreSQL: set TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test")
    return db


@pytest.fixture
def lite(db):
    if not db.is_sqlite:
        pytest.skip("SQLite variant (this is the PostgreSQL run)")
    return db


def race(db, workflow, instance_id: int, moves: list[tuple[int, Request]]) -> list[object]:
    """Run every (user, request) in its own thread and transaction, all released at once.
    Returns each thread's ActionResult or the exception it raised."""
    barrier = threading.Barrier(len(moves), timeout=60)
    outcomes: list[object] = [None] * len(moves)

    def work(i: int, user: int, request: Request) -> None:
        try:
            with db.write() as session:
                barrier.wait()
                outcomes[i] = workflow.act(session, user, instance_id, request)
        except BaseException as exc:  # noqa: BLE001 - reported to the test, not lost in the thread
            outcomes[i] = exc

    threads = [threading.Thread(target=work, args=(i, user, request)) for i, (user, request) in enumerate(moves)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return outcomes


def same_task(db, store, workflow, clock, n: int, *, same_person: bool = False):
    people = setup(db, store, clock, CROWD)
    iid = start(db, workflow, people["submitter"], data=SMALL)
    task = open_task(db, iid)
    count = instance(db, iid).trail_count
    actors = [people["reviewer0"]] * n if same_person else [people[r] for r in REVIEWERS[:n]]
    decisions = ["approve" if i % 2 == 0 else "reject" for i in range(n)]
    outcomes = race(db, workflow, iid, [(user, Request(d, task.id, opinion="意见"))
                                        for user, d in zip(actors, decisions)])
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, Conflict) for o in losers), losers
    [decided] = [t for t in tasks(db, iid) if t.id == task.id]
    assert decided.status == "done" and decided.decision in ("approve", "reject")
    assert instance(db, iid).trail_count == count + 1
    evs = events(db, iid)
    assert len(evs) == count + 1 and evs[-1].task_id == task.id and evs[-1].action == decided.decision
    with db.read() as s:
        assert trail.verify(s).ok


@pytest.mark.postgres
@pytest.mark.parametrize("n", [2, 8])
def test_postgres_same_task_exactly_one_wins(pg, store, workflow, clock, n):
    same_task(pg, store, workflow, clock, n)


@pytest.mark.postgres
def test_postgres_double_click_by_one_person(pg, store, workflow, clock):
    same_task(pg, store, workflow, clock, 2, same_person=True)


@pytest.mark.postgres
def test_postgres_huiqian_members_on_different_tasks_all_succeed(pg, store, workflow, clock):
    """会签 (and the parallel group around it): three people decide three different tasks of one
    step at once. The instance lock serialises them — no deadlock, no spurious conflict — and the
    last one moves the instance exactly once."""
    people = setup(pg, store, clock)
    iid = start(pg, workflow, people["submitter"], data=BIG)
    act(pg, workflow, people["promo1"], iid, "approve", open_task(pg, iid).id)
    count = instance(pg, iid).trail_count
    joint = {t.assignee_id or people["econ"]: t for t in tasks(pg, iid, "open")}
    assert set(joint) == {people["econ"], people["plan1"], people["plan2"]}
    outcomes = race(pg, workflow, iid, [(user, Request("approve", t.id)) for user, t in joint.items()])
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    inst = instance(pg, iid)
    assert (inst.current_step, inst.trail_count) == ("sasac", count + 3)
    assert [t.step for t in tasks(pg, iid, "open")] == ["sasac"]
    assert [e.to_step for e in events(pg, iid)[-3:]].count("sasac") == 1
    with pg.read() as s:
        assert trail.verify(s).ok


@pytest.mark.postgres
def test_postgres_two_huiqian_members_concurrently(pg, store, workflow, clock):
    people = setup(pg, store, clock)
    iid = start(pg, workflow, people["submitter"], data=BIG)
    act(pg, workflow, people["promo1"], iid, "approve", open_task(pg, iid).id)
    plan = {t.assignee_id: t for t in tasks(pg, iid, "open") if t.branch == "plan"}
    outcomes = race(pg, workflow, iid, [(user, Request("approve", t.id)) for user, t in plan.items()])
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert instance(pg, iid).current_step == "joint"
    assert sorted(t.branch for t in tasks(pg, iid, "open")) == ["industry"]


@pytest.mark.parametrize("n", [2, 8])
def test_sqlite_same_task_exactly_one_wins(lite, store, workflow, clock, n):
    same_task(lite, store, workflow, clock, n)


def test_sqlite_huiqian_members_on_different_tasks_all_succeed(lite, store, workflow, clock):
    people = setup(lite, store, clock)
    iid = start(lite, workflow, people["submitter"], data=BIG)
    act(lite, workflow, people["promo1"], iid, "approve", open_task(lite, iid).id)
    plan = {t.assignee_id: t for t in tasks(lite, iid, "open") if t.branch == "plan"}
    outcomes = race(lite, workflow, iid, [(user, Request("approve", t.id)) for user, t in plan.items()])
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
