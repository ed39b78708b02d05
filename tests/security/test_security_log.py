"""The security log as evidence: every row hash-chained (and `flask trail verify` says where a
superuser's edit, deletion or insertion broke it), command-line actions recorded with the
operating-system user, refused requests and 403s recorded with user, address and reason code,
logout with its address; and `flask trail verify` after `flask trail archive` (no false break)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select, text

from tests.cli.runner import Cli
from tests.security.conftest import security_events
from tests.tampering import superuser
from tests.web.helpers import as_user, open_tasks, start
from workflow_app.models import SecurityEvent
from workflow_app.services import security_log


def rows(app) -> list[SecurityEvent]:
    with app.extensions["parkflow"].db.read() as s:
        return list(s.scalars(select(SecurityEvent).order_by(SecurityEvent.seq)))


def verdict(app):
    with app.extensions["parkflow"].db.read() as s:
        return security_log.verify(s)


def some_events(app) -> list[SecurityEvent]:
    client = app.test_client()
    for _ in range(2):
        client.post("/login", data={"username": "promo1", "password": "wrong"})
    as_user(app, "promo2").post("/logout")
    return rows(app)


def test_every_row_is_chained_and_verifies(app, people):
    events = some_events(app)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)) and len(events) >= 4
    assert all(e.hash and e.prev_hash for e in events)
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert verdict(app) == (len(events), None)


def test_edit_delete_insert_are_each_caught(app, people, db):
    events = some_events(app)
    victim = events[1]
    with superuser(db) as conn:
        conn.execute(text("UPDATE security_event SET ip = '10.9.9.9' WHERE id = :id"), {"id": victim.id})
    checked, broken = verdict(app)
    assert checked == 1 and broken.event_id == victim.id and "edited" in broken.reason
    with superuser(db) as conn:   # put it back, then remove it instead
        conn.execute(text("UPDATE security_event SET ip = :ip WHERE id = :id"), {"ip": victim.ip, "id": victim.id})
    assert verdict(app)[1] is None
    with superuser(db) as conn:
        conn.execute(text("DELETE FROM security_event WHERE id = :id"), {"id": victim.id})
    _checked, broken = verdict(app)
    assert broken.seq == victim.seq + 1 and "sequence jumps" in broken.reason


def test_removing_the_newest_rows_is_caught(app, people, db):
    events = some_events(app)
    with superuser(db) as conn:
        conn.execute(text("DELETE FROM security_event WHERE id = :id"), {"id": events[-1].id})
    _checked, broken = verdict(app)
    assert broken is not None and "missing" in broken.reason


def test_a_row_inserted_by_hand_is_caught(app, people, db):
    some_events(app)
    with superuser(db) as conn:
        conn.execute(text("INSERT INTO security_event (created_at, username, ip, event, outcome, details) "
                          "VALUES (CURRENT_TIMESTAMP, 'ghost', '', 'login', 'ok', '{}')"))
    _checked, broken = verdict(app)
    assert broken is not None and "outside the chain" in broken.reason


def test_flask_trail_verify_reports_the_security_log(app, people, db, database_url, sec_defs):
    events = some_events(app)
    cli = Cli(database_url, sec_defs)
    try:
        ok = cli("trail", "verify")
        assert ok.exit_code == 0 and f"OK: security log, {len(events)} rows verified" in ok.output, ok.output
        with superuser(db) as conn:
            conn.execute(text("UPDATE security_event SET username = 'someone' WHERE id = :id"), {"id": events[0].id})
        bad = cli("trail", "verify")
        assert bad.exit_code == 1 and f"BROKEN in the security log: row id {events[0].id}, seq 1" in bad.output
    finally:
        cli.close()


# ---------------------------------------------------------------- what is recorded
def test_command_line_actions_are_recorded(app, people, database_url, sec_defs):
    cli = Cli(database_url, sec_defs)
    try:
        assert cli("defs", "sync").exit_code == 0
        refused = cli("defs", "migrate", "review", "--from", "1", "--to", "99")
        assert refused.exit_code == 1
        assert cli("tokens", "create", "promo1", "--name", "nightly", "--days", "5").exit_code == 0
    finally:
        cli.close()
    [sync] = security_events(app, "definitions_synced")
    assert sync.username.startswith("cli:") and sync.ip == "cli" and sync.details["definitions"] >= 1
    [migrate] = security_events(app, "instances_migrated")
    assert migrate.outcome == "refused" and migrate.details["key"] == "review" and migrate.details["reason"]
    [token] = security_events(app, "cli_token_created")
    assert token.details["target"] == "promo1" and token.username.startswith("cli:")


def test_403_is_recorded_with_user_address_and_reason(app, people):
    client = as_user(app, "promo1")
    assert client.get("/security/log").status_code == 403
    [denied] = security_events(app, "access_denied")
    assert denied.username == "promo1" and denied.ip == "127.0.0.1" and denied.outcome == "refused"
    assert denied.details["path"] == "/security/log" and denied.details["reason"] == "forbidden"


def test_an_administrator_deciding_is_recorded_with_its_reason_code(app, people):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    admin = as_user(app, "sysadmin")
    assert admin.post(f"/instances/{iid}/act", data={"task_id": task.id, "action": "approve"}).status_code == 403
    [denied] = security_events(app, "access_denied")
    assert denied.username == "sysadmin" and denied.details["reason"] == "administrator_decides"


def test_refused_self_approval_is_recorded_with_its_reason_code(app, people):
    from tests.web.helpers import act
    from workflow_app.engine.errors import Forbidden
    from workflow_app.engine.runtime import Request

    iid = start(app, people, name="dual", department="zhentou")
    [task] = open_tasks(app, iid)
    dual = as_user(app, "dual")
    dual.post("/act-as", data={"department": "invest_promo", "role": "reviewer"})
    response = dual.post(f"/instances/{iid}/act", data={"task_id": task.id, "action": "approve",
                                                        "opinion": "同意"})
    assert response.status_code in (302, 403)
    [refused] = security_events(app, "action_refused")
    assert refused.username == "dual" and refused.details["reason"] == "self_approval"
    assert refused.details["task_id"] == task.id and refused.ip == "127.0.0.1"
    try:  # the engine gives the code to any caller
        act(app, people, "dual", iid, Request("approve", task_id=task.id, opinion="同意"))
    except Forbidden as refusal:
        assert refusal.details["reason"] == "self_approval"
    else:
        raise AssertionError("self-approval was not refused")


def test_logout_is_recorded_with_the_address(app, people):
    as_user(app, "promo2").post("/logout")
    [logout] = security_events(app, "logout")
    assert logout.username == "promo2" and logout.ip == "127.0.0.1"


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request, tmp_path):
    import os

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("PostgreSQL: set TEST_DATABASE_URL")
    from workflow_app.database import Database
    server = make_url(Database(os.environ["TEST_DATABASE_URL"]).url)
    name = f"parkflow_mig_{os.getpid()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migration_chains_the_rows_already_there(scratch_url):
    """0009_security on a database that already has a security log: the rows are chained oldest
    first, the head recorded, the append-only guard back in place."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy.orm import Session

    from tests.conftest import ROOT
    from workflow_app.database import Database
    from workflow_app.services import append_only

    url = scratch_url
    cfg = AlembicConfig(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "0008_engine")
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            for n in range(3):
                conn.execute(text("INSERT INTO security_event (created_at, username, ip, event, outcome, details) "
                                  "VALUES (:at, :u, '10.0.0.1', 'login', 'ok', :d)"),
                             {"at": datetime(2026, 5, n + 1, 8, 0, 0, 123456, tzinfo=timezone.utc)
                              if not db.is_sqlite else f"2026-05-0{n + 1} 08:00:00.123456",
                              "u": f"old{n}", "d": '{"n": %d}' % n})
        command.upgrade(cfg, "head")
        with Session(db.engine) as s:
            assert security_log.verify(s) == (3, None)
            assert [e.username for e in s.scalars(select(SecurityEvent).order_by(SecurityEvent.seq))] == \
                ["old0", "old1", "old2"]
        with db.engine.connect() as conn:
            guards = {"security_event_append_only_update", "security_event_append_only_delete"} \
                if db.is_sqlite else {"security_event_append_only_rows"}
            assert guards <= append_only.installed(conn)
    finally:
        db.dispose()


def test_the_compliance_console_verifies_the_security_log_too(app, people, db):
    events = some_events(app)
    auditor = as_user(app, "auditor")
    page = auditor.post("/compliance/verify")
    assert page.status_code == 200 and 'data-security-log="ok"' in page.get_data(as_text=True)
    with superuser(db) as conn:
        conn.execute(text("UPDATE security_event SET outcome = 'ok' WHERE id = :id"), {"id": events[0].id})
    broken = auditor.post("/compliance/verify").get_data(as_text=True)
    assert 'data-security-log="broken"' in broken and f"{events[0].id}" in broken
