"""Fixtures and helpers for the clock and SLA tests: the `clock.yaml` fixture beside the real
organisation, people with e-mail addresses (heads, the coordinating body 区经信局), and shortcuts
to read back tasks, trail events and notifications."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.factories import create_people
from workflow_app.database import Database
from workflow_app.engine.calendar import WorkingCalendar
from workflow_app.engine.runtime import Request
from workflow_app.models import Notification, Task, TrailEvent, User
from workflow_app.services.definitions import DefinitionStore
from workflow_app.services.workflow import Workflow

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")

PEOPLE = {
    "submitter": [("zhentou", "submitter")],
    "promo1": [("invest_promo", "reviewer")],
    "promo2": [("invest_promo", "reviewer")],
    "promo_head": [("invest_promo", "head")],
    "econ": [("econ_it", "reviewer")],
    "econ_head": [("econ_it", "head")],
    "plan1": [("dev_reform", "reviewer")],
    "plan2": [("dev_reform", "reviewer")],
    "plan_head": [("dev_reform", "head")],
    "sasac": [("sasac", "head")],
    "audit1": [("audit", "compliance")],
    "audit2": [("audit", "compliance")],
    "sysadmin": [],
}


def local(year, month, day, hour=9, minute=0) -> datetime:
    """A Beijing-time instant, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(timezone.utc)


def day_end(year, month, day) -> datetime:
    """The local midnight that ends a day (what a due date is), as UTC."""
    from datetime import date, timedelta
    d = date(year, month, day) + timedelta(days=1)
    return datetime(d.year, d.month, d.day, tzinfo=SHANGHAI).astimezone(timezone.utc)


@dataclass
class Env:
    db: Database
    store: DefinitionStore
    workflow: Workflow
    clock: object
    people: dict[str, int]

    def start(self, route: str = "task", who: str = "submitter", name: str = "时限测试项目") -> int:
        with self.db.write() as s:
            return self.workflow.start(s, self.people[who], "clock", {"name": name, "route": route},
                                       department="zhentou").instance_id

    def act(self, who: str, instance_id: int, action: str, task_id: int | None = None, **kw):
        role = kw.pop("role", None)
        department = kw.pop("department", None)
        with self.db.write() as s:
            return self.workflow.act(s, self.people[who], instance_id, Request(action, task_id, **kw),
                                     department=department, role=role)

    def tasks(self, instance_id: int, *statuses: str) -> list[Task]:
        with self.db.read() as s:
            q = select(Task).where(Task.instance_id == instance_id)
            if statuses:
                q = q.where(Task.status.in_(statuses))
            return list(s.scalars(q.order_by(Task.id)))

    def task(self, task_id: int) -> Task:
        with self.db.read() as s:
            return s.get(Task, task_id)

    def open_task(self, instance_id: int, step: str | None = None) -> Task:
        return next(t for t in self.tasks(instance_id, "open") if step is None or t.step == step)

    def events(self, instance_id: int | None, *actions: str) -> list[TrailEvent]:
        with self.db.read() as s:
            where = TrailEvent.instance_id.is_(None) if instance_id is None else TrailEvent.instance_id == instance_id
            q = select(TrailEvent).where(where)
            if actions:
                q = q.where(TrailEvent.action.in_(actions))
            return list(s.scalars(q.order_by(TrailEvent.seq)))

    def notifications(self, who: str | None = None, kind: str | None = None) -> list[Notification]:
        with self.db.read() as s:
            q = select(Notification)
            if who:
                q = q.where(Notification.user_id == self.people[who])
            if kind:
                q = q.where(Notification.kind == kind)
            return list(s.scalars(q.order_by(Notification.id)))

    def count(self, model) -> int:
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(model))


def clock_defs(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clock_defs")
    shutil.copy(ROOT / "process_defs" / "organisation.yaml", path)
    shutil.copy(ROOT / "tests" / "fixtures" / "clock" / "clock.yaml", path)
    return path


def make_env(db: Database, clock, defs: Path, *, calendar: WorkingCalendar | None = None) -> Env:
    store = DefinitionStore(defs)
    calendar = calendar or WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars")
    workflow = Workflow(store, calendar, clock)
    with db.write() as s:
        store.sync(s, clock())
        people = create_people(s, PEOPLE)
        for name, uid in people.items():
            s.get(User, uid).email = f"{name}@zhenhai.example"
    return Env(db, store, workflow, clock, people)


@pytest.fixture(scope="session")
def clock_defs_dir(tmp_path_factory) -> Path:
    return clock_defs(tmp_path_factory)


@pytest.fixture
def env(db, clock, clock_defs_dir) -> Env:
    return make_env(db, clock, clock_defs_dir)
