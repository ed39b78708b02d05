"""The hostile-input suite's fixtures: an app over the migrated test database (SQLite, and
PostgreSQL with TEST_DATABASE_URL) with the test definitions, the factory people plus the three
administrators and a compliance reviewer, and `snapshot()` — what the database holds — so every
refused request can assert that nothing was written."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config import TestConfig
from tests.factories import PEOPLE, create_people
from workflow_app import create_app
from workflow_app.models import (LoginSession, Membership, ProcessDefinition, ProcessInstance,
                                 SecurityEvent, Substitution, Task, TrailEvent, User)

ROOT = Path(__file__).resolve().parents[2]
CROWD = {**PEOPLE, "secadmin": [], "auditadmin": [], "auditor": [("audit", "compliance")],
         "dual": [("zhentou", "submitter"), ("invest_promo", "reviewer")]}
ADMINS = {"sysadmin": "system", "secadmin": "security", "auditadmin": "audit"}


@pytest.fixture(scope="session")
def sec_defs(defs_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sec_defs")
    for f in defs_dir.iterdir():
        shutil.copy(f, path)
    for f in (ROOT / "tests" / "web" / "fixtures").glob("*.yaml"):
        shutil.copy(f, path)
    return path


@pytest.fixture
def make_app(db, sec_defs, clock):
    made = []

    def make(*, csrf: bool = False, real_clock: bool = False, enforce_2fa: bool = False, **settings):
        class Config(TestConfig):
            DATABASE_URL = db.url
            PROCESS_DEFS = str(sec_defs)
            WTF_CSRF_ENABLED = csrf
            RATELIMIT_ENABLED = False
            SECOND_FACTOR_ENFORCED = enforce_2fa

        for key, value in settings.items():
            setattr(Config, key, value)
        app = create_app(Config)
        svc = app.extensions["parkflow"]
        if real_clock:  # time-machine moves the real clock
            svc.clock = svc.workflow.clock = lambda: datetime.now(timezone.utc)
        else:
            svc.clock = svc.workflow.clock = clock
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["parkflow"].db.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


def add_crowd(app, now: datetime) -> dict[str, int]:
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.store.sync(s, now)
        ids = create_people(s, CROWD)
        for name, role in ADMINS.items():
            s.get(User, ids[name]).admin_role = role
        for uid in ids.values():
            s.get(User, uid).password_changed_at = now
    return ids


@pytest.fixture
def people(app, clock) -> dict[str, int]:
    return add_crowd(app, clock())


REFUSAL_EVENTS = ("access_denied", "action_refused")


def snapshot(app) -> dict[str, object]:
    """Counts and sums that change when anything is written (rows added, tasks claimed or
    decided, instances moved, sessions ended, accounts changed). The security log's records of
    refused requests (REFUSAL_EVENTS) are left out: a refusal is meant to be recorded, and
    tests/security/test_security_log.py checks those records."""
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        def count(model, *where):
            return s.scalar(select(func.count()).select_from(model).where(*where))
        return {
            "trail": count(TrailEvent), "instances": count(ProcessInstance), "tasks": count(Task),
            "security_log": count(SecurityEvent, SecurityEvent.event.not_in(REFUSAL_EVENTS)), "users": count(User), "memberships": count(Membership),
            "substitutions": count(Substitution), "definitions": count(ProcessDefinition),
            "versions": s.scalar(select(func.coalesce(func.sum(ProcessInstance.version), 0))),
            "claimed": count(Task, Task.assignee_id.is_not(None)),
            "done": count(Task, Task.status == "done"),
            "live_sessions": count(LoginSession, LoginSession.revoked_at.is_(None)),
            "inactive": count(User, User.is_active.is_(False)),
            "must_change": count(User, User.must_change_password.is_(True)),
            "locked": count(User, User.locked_until.is_not(None)),
            "totp": count(User, User.totp_secret.is_not(None)),
        }


def security_events(app, event: str) -> list[SecurityEvent]:
    with app.extensions["parkflow"].db.read() as s:
        return list(s.scalars(select(SecurityEvent).where(SecurityEvent.event == event).order_by(SecurityEvent.id)))
