"""Shared fixtures: a migrated database per backend (SQLite always; PostgreSQL when
TEST_DATABASE_URL is set), emptied between tests, and a Workflow service over test definitions."""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text

from workflow_app.database import Database
from workflow_app.models import Base
from workflow_app.services import append_only
from workflow_app.services.definitions import DefinitionStore
from workflow_app.services.workflow import Workflow

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def migrate(url: str) -> None:
    cfg = AlembicConfig(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


def empty(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    # The trail and the security log are append-only (migration 0005): lift the guard for this
    # one cleanup transaction, the way sanctioned maintenance does.
    with db.engine.begin() as conn, append_only.suspended(conn):
        if db.is_sqlite:
            for name in tables:
                conn.execute(text(f'DELETE FROM "{name}"'))
        else:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in tables) + " RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    """A freshly migrated database. On PostgreSQL each test run gets its own database on the
    TEST_DATABASE_URL server, so parallel runs (and CI beside a developer) never collide."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        migrate(url)
        yield url
        return
    from sqlalchemy.engine import make_url
    server = make_url(Database(PG_URL).url)
    name = f"parkflow_test_{os.getpid()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _session_db(database_url):
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def db(_session_db) -> Database:
    empty(_session_db)
    return _session_db


@pytest.fixture(scope="session")
def defs_dir(tmp_path_factory) -> Path:
    """Test definitions beside the real organisation file."""
    path = tmp_path_factory.mktemp("defs")
    shutil.copy(ROOT / "process_defs" / "organisation.yaml", path)
    for f in (ROOT / "tests" / "fixtures").glob("*.yaml"):
        shutil.copy(f, path)
    return path


class Clock:
    """A settable clock for services (tests freeze time rather than sleep)."""

    def __init__(self, now: datetime | None = None):
        self.now = now or datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(defs_dir) -> DefinitionStore:
    return DefinitionStore(defs_dir)


@pytest.fixture
def workflow(store, clock) -> Workflow:
    from workflow_app.engine.calendar import WorkingCalendar
    return Workflow(store, WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars"), clock)
