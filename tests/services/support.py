"""Helpers for service tests: people, syncing, and reading back what an action wrote."""
from __future__ import annotations

from sqlalchemy import func, select

from tests.factories import PEOPLE, create_people
from workflow_app.database import Database
from workflow_app.engine.runtime import Request
from workflow_app.models import ProcessInstance, Task, TrailEvent
from workflow_app.services.definitions import DefinitionStore
from workflow_app.services.workflow import Workflow

BIG = {"project_name": "新材料中试基地", "investment_wan": "6000", "industry": "新材料"}
SMALL = {"project_name": "园区配套", "investment_wan": "800", "industry": "智能制造"}

# tests/factories.PEOPLE plus the audit committee (modes.yaml), the group heads (routing.yaml)
# and a 星寓 submitter.
MORE_PEOPLE = {
    **PEOPLE,
    "audit1": [("audit", "compliance")],
    "audit2": [("audit", "compliance")],
    "audit3": [("audit", "compliance")],
    "zt_head": [("zhentou", "head")],
    "hj_head": [("haijiang", "head")],
    "xy_submit": [("xingyu", "submitter")],
}


def setup(db: Database, store: DefinitionStore, clock, people: dict | None = None) -> dict[str, int]:
    with db.write() as s:
        store.sync(s, clock())
        return create_people(s, people or MORE_PEOPLE)


def start(db: Database, workflow: Workflow, user: int, key: str = "review", data: dict | None = None,
          department: str = "zhentou") -> int:
    with db.write() as s:
        return workflow.start(s, user, key, data or BIG, department=department).instance_id


def act(db: Database, workflow: Workflow, who: int, instance_id: int, action: str,
        task_id: int | None = None, **kw):
    with db.write() as s:
        return workflow.act(s, who, instance_id, Request(action, task_id, **kw))


def tasks(db: Database, instance_id: int, *statuses: str) -> list[Task]:
    with db.read() as s:
        q = select(Task).where(Task.instance_id == instance_id)
        if statuses:
            q = q.where(Task.status.in_(statuses))
        return list(s.scalars(q.order_by(Task.id)))


def open_task(db: Database, instance_id: int, *, assignee: int | None = None, step: str | None = None) -> Task:
    for t in tasks(db, instance_id, "open"):
        if (assignee is None or t.assignee_id == assignee) and (step is None or t.step == step):
            return t
    raise LookupError(f"no open task for {assignee} on {instance_id}")


def instance(db: Database, instance_id: int) -> ProcessInstance:
    with db.read() as s:
        return s.get(ProcessInstance, instance_id)


def events(db: Database, instance_id: int | None) -> list[TrailEvent]:
    with db.read() as s:
        where = TrailEvent.instance_id.is_(None) if instance_id is None else TrailEvent.instance_id == instance_id
        return list(s.scalars(select(TrailEvent).where(where).order_by(TrailEvent.seq)))


def count_events(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(TrailEvent))


def portfolio_env(db: Database, clock, now, people: dict):
    """The shipped definitions and the demo portfolio synced at `now`, with `people` created: the
    setting of the portfolio's service tests (admission links, monitoring)."""
    from pathlib import Path
    from types import SimpleNamespace

    from workflow_app.domain.portfolio import load_file
    from workflow_app.domain.portfolio_store import load_portfolio
    from workflow_app.engine.calendar import WorkingCalendar

    root = Path(__file__).resolve().parents[2]
    clock.now = now
    store = DefinitionStore(root / "process_defs")
    workflow = Workflow(store, WorkingCalendar.from_directory(root / "process_defs" / "calendars"), clock)
    with db.write() as s:
        store.sync(s, clock())
        load_portfolio(s, load_file(org=store.organisation))
        created = create_people(s, people)
    return SimpleNamespace(db=db, workflow=workflow, people=created, clock=clock)
