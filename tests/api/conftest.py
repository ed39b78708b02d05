"""An app per test over the migrated test database (SQLite, and PostgreSQL when configured), the
test definitions synced, the factory people, and a bearer token for each of them."""
from __future__ import annotations

import pytest

from config import TestConfig
from tests.factories import PEOPLE, create_people
from workflow_app import create_app
from workflow_app.models import User
from workflow_app.services.tokens import create_token

DATA = {"project_name": "新材料中试基地", "investment_wan": "6000", "industry": "新材料"}

# The factory people plus the two who may verify the trail: a compliance reviewer (membership
# role `compliance`) and the audit administrator (三员: admin_role 'audit', no memberships).
API_PEOPLE = {**PEOPLE, "reviewer_c": [("audit", "compliance")], "auditor": []}


@pytest.fixture
def app(db, defs_dir, clock):
    class Config(TestConfig):
        DATABASE_URL = db.url
        PROCESS_DEFS = str(defs_dir)

    app = create_app(Config)
    svc = app.extensions["parkflow"]
    svc.clock = svc.workflow.clock = clock  # frozen time for the service layer too
    yield app
    svc.db.dispose()


@pytest.fixture
def people(app, clock) -> dict[str, int]:
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        ids = create_people(s, API_PEOPLE)
        s.get(User, ids["auditor"]).admin_role = "audit"
    return ids


@pytest.fixture
def tokens(app, people, clock) -> dict[str, str]:
    """name -> plaintext token, acting in no particular capacity."""
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        return {name: create_token(s, uid, f"{name} script", 30, now=clock()) for name, uid in people.items()}


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}
