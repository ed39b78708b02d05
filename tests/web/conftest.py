"""The HTML pages over the migrated test database (SQLite, and PostgreSQL when configured): an app
per test with the test definitions (plus `quick_check`, a step that allows 批量同意) synced, the
factory people and a frozen clock. Helpers to sign in and act are in helpers.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from config import TestConfig
from tests.factories import PEOPLE, create_people
from workflow_app import create_app

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def web_defs(defs_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("web_defs")
    for f in defs_dir.iterdir():
        shutil.copy(f, path)
    for f in (HERE / "fixtures").glob("*.yaml"):
        shutil.copy(f, path)
    return path


@pytest.fixture
def make_app(db, web_defs, clock):
    made = []

    def make(*, csrf: bool = False, defs: Path | None = None):
        class Config(TestConfig):
            DATABASE_URL = db.url
            PROCESS_DEFS = str(defs or web_defs)
            WTF_CSRF_ENABLED = csrf
            RATELIMIT_ENABLED = False

        app = create_app(Config)
        svc = app.extensions["parkflow"]
        svc.clock = svc.workflow.clock = clock  # frozen time for sessions and deadlines too
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["parkflow"].db.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def people(app, clock) -> dict[str, int]:
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        return create_people(s, PEOPLE)


@pytest.fixture
def client(app):
    return app.test_client()
