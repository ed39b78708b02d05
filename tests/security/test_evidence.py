"""The evidence tables are append-only in the database itself; `flask trail verify` still catches a
superuser who switches the guard off; archiving keeps every chain verifiable; backups round-trip.
Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from tests.cli.runner import Cli
from tests.security.conftest import security_events, snapshot
from tests.web.helpers import DATA, act, as_user, open_tasks, start, text as page_text
from workflow_app.engine.runtime import Request
from workflow_app.models import ProcessInstance, TrailEvent
from workflow_app.services import append_only


def finished(app, people) -> int:
    """An application taken to its end (approved)."""
    iid = start(app, people, data={**DATA, "investment_wan": "800"})
    for who in ("promo1", "sasac"):
        [task] = open_tasks(app, iid)
        act(app, people, who, iid, Request("claim", task.id))
        act(app, people, who, iid, Request("approve", task.id, opinion="同意"))
    with app.extensions["parkflow"].db.read() as s:
        assert s.get(ProcessInstance, iid).status == "approved"
    return iid


@pytest.mark.parametrize("statement", [
    "UPDATE trail_event SET opinion = '不同意'",
    "DELETE FROM trail_event",
    "UPDATE security_event SET outcome = 'ok'",
    "DELETE FROM security_event",
])
def test_the_database_refuses_rewriting_evidence(app, people, statement):
    """Through the application's own connection (as an injected statement would run)."""
    finished(app, people)
    with app.extensions["parkflow"].db.write() as s:
        s.execute(text("INSERT INTO security_event (created_at, username, ip, event, outcome, details) "
                       "VALUES (:t, 'x', '', 'probe', 'refused', '{}')"), {"t": datetime.now(timezone.utc)})
    before = snapshot(app)
    with pytest.raises(DBAPIError) as caught:
        with app.extensions["parkflow"].db.write() as s:
            s.execute(text(statement))
    assert "append-only" in str(caught.value)
    assert snapshot(app) == before


def test_truncate_is_refused_on_postgresql(app, people):
    db = app.extensions["parkflow"].db
    if db.is_sqlite:
        pytest.skip("SQLite has no TRUNCATE (DELETE is refused above)")
    finished(app, people)
    before = snapshot(app)
    for table in ("trail_event", "security_event"):
        with pytest.raises(DBAPIError, match="append-only"):
            with db.write() as s:
                s.execute(text(f"TRUNCATE {table} CASCADE"))
    assert snapshot(app) == before


def test_guard_is_installed_and_back_after_maintenance(app, people):
    db = app.extensions["parkflow"].db
    with db.engine.connect() as conn:
        names = append_only.installed(conn)
    assert len(names) == 6, names  # trail_event, security_event, trail_anchor
    with db.engine.begin() as conn, append_only.suspended(conn):
        pass
    with db.engine.connect() as conn:
        assert append_only.installed(conn) == names


def test_verify_catches_a_superuser_who_disables_the_guard(app, people, database_url, defs_dir):
    iid = finished(app, people)
    approve = [e for e in _events(app, iid) if e.action == "approve"][0]
    db = app.extensions["parkflow"].db
    with db.engine.begin() as conn:
        if db.is_sqlite:  # no privileges in SQLite: whoever holds the file can drop the trigger
            conn.exec_driver_sql("DROP TRIGGER trail_event_append_only_update")
        else:
            conn.exec_driver_sql("ALTER TABLE trail_event DISABLE TRIGGER trail_event_append_only_rows")
        conn.execute(text("UPDATE trail_event SET opinion = '不同意' WHERE id = :id"), {"id": approve.id})
    cli = Cli(database_url, defs_dir)
    try:
        result = cli("trail", "verify")
        assert result.exit_code == 1
        assert f"BROKEN in instance {iid}: event id {approve.id}" in result.output and "edited" in result.output
    finally:
        cli.close()
        with db.engine.begin() as conn:  # put the guard back for the tests that follow
            if db.is_sqlite:
                conn.exec_driver_sql("CREATE TRIGGER trail_event_append_only_update BEFORE UPDATE ON trail_event "
                                     "BEGIN SELECT RAISE(ABORT, 'parkflow: table trail_event is append-only "
                                     "(UPDATE refused)'); END")
            else:
                conn.exec_driver_sql("ALTER TABLE trail_event ENABLE TRIGGER trail_event_append_only_rows")


def _events(app, iid):
    with app.extensions["parkflow"].db.read() as s:
        return list(s.scalars(select(TrailEvent).where(TrailEvent.instance_id == iid).order_by(TrailEvent.seq)))


# ---------------------------------------------------------------- archiving
@pytest.fixture
def old_and_new(make_app, clock):
    """One application finished in January 2026, one still running; `now` is set to 2026-09-30."""
    from tests.security.conftest import add_crowd
    app = make_app()
    clock.now = datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc)
    people = add_crowd(app, clock.now)
    old = finished(app, people)
    running = start(app, people)
    clock.now = datetime(2026, 9, 30, 2, 0, tzinfo=timezone.utc)
    return app, people, old, running


def test_archive_refuses_anything_younger_than_the_retention(old_and_new, database_url, defs_dir, tmp_path):
    app, _people, _old, _running = old_and_new
    before = snapshot(app)
    cli = _cli(app, database_url, defs_dir)
    young = (app.extensions["parkflow"].clock() - timedelta(days=100)).date().isoformat()
    result = cli("trail", "archive", "--before", young, str(tmp_path / "a.jsonl"))
    cli.close()
    assert result.exit_code == 1 and "younger than the retention of 185 days" in result.output
    after = snapshot(app)
    assert after.pop("security_log") == before.pop("security_log") + 1   # the refusal, logged
    assert not (tmp_path / "a.jsonl").exists() and after == before
    [refusal] = security_events(app, "trail_archived")
    assert refusal.outcome == "refused" and refusal.ip == "cli" and refusal.username.startswith("cli:")


def test_archive_keeps_the_chain_verifiable(old_and_new, database_url, defs_dir, tmp_path):
    app, _people, old, running = old_and_new
    out = tmp_path / "2026-01.jsonl"
    cli = _cli(app, database_url, defs_dir)
    try:
        result = cli("trail", "archive", "--before", "2026-03-01", str(out))
        assert result.exit_code == 0, result.output
        assert "archived 5 events of 1 instance(s)" in result.output
        assert [e.action for e in _events(app, old)] == []           # moved out of the database
        assert len(_events(app, running)) == 1                       # the running one stays
        system = [e for e in _events(app, None) if e.action == "trail_archive"]
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert system[-1].details["archive_hash"] == lines[-1]["archive_hash"]
        assert system[-1].details["events"] == 5 and system[-1].details["instances"] == [[old, old]]

        ok = cli("trail", "verify", "--archive", str(out))
        assert ok.exit_code == 0 and "1 archive(s) verified" in ok.output, ok.output
        plain = cli("trail", "verify")
        assert plain.exit_code == 0 and "1 archive(s) recorded" in plain.output

        # an edited archive no longer matches the hash carried into the live chain
        edited = tmp_path / "edited.jsonl"
        edited.write_text(out.read_text().replace("同意", "不同意", 1))
        bad = cli("trail", "verify", "--archive", str(edited))
        assert bad.exit_code == 1 and "BROKEN in archive edited.jsonl" in bad.output

        # a second archive is refused over the first file, and chains to it otherwise
        assert cli("trail", "archive", "--before", "2026-03-01", str(out)).exit_code == 1
    finally:
        cli.close()


def test_after_archiving_every_live_verification_continues_from_the_archive(old_and_new, database_url,
                                                                           defs_dir, tmp_path, db):
    """No false break on the live database once instances were archived: the console's and the
    API's verification (services/trail.verify, the one implementation) and the CLI agree; a live
    event smuggled back into an archived instance is still a break."""
    from tests.tampering import superuser
    from workflow_app.services import trail

    app, people, old, _running = old_and_new
    cli = _cli(app, database_url, defs_dir)
    try:
        assert cli("trail", "archive", "--before", "2026-03-01", str(tmp_path / "a.jsonl")).exit_code == 0
        svc = app.extensions["parkflow"]
        with svc.db.read() as s:
            assert trail.verify(s).ok
        from workflow_app.models import User
        with svc.db.write() as s:   # the crowd's passwords date from January: not expired today
            s.get(User, people["auditor"]).password_changed_at = svc.clock()
        auditor = as_user(app, "auditor")
        page = auditor.post("/compliance/verify")
        assert page.status_code == 200 and "cx-ok" in page_text(page)
        assert cli("trail", "verify").exit_code == 0
        with superuser(db) as conn:   # a forged live event for the archived instance
            conn.execute(text("INSERT INTO trail_event (instance_id, seq, created_at, action, actor_name, "
                              "prev_hash, hash, details) VALUES (:iid, 1, CURRENT_TIMESTAMP, 'approve', 'x', "
                              ":g, :g, '{}')"), {"iid": old, "g": "0" * 64})
        with svc.db.read() as s:
            result = trail.verify(s)
        assert result.broken is not None and "archived instance" in result.broken.reason
        bad = cli("trail", "verify")
        assert bad.exit_code == 1 and f"instance {old}" in bad.output
    finally:
        cli.close()


def _cli(app, database_url, defs_dir) -> Cli:
    cli = Cli(database_url, defs_dir)
    cli.app.extensions["parkflow"].clock = app.extensions["parkflow"].clock
    return cli


# ---------------------------------------------------------------- backup and restore
@pytest.mark.parametrize("fmt", [None, "jsonl"])
def test_backup_and_restore_round_trip(app, people, database_url, defs_dir, tmp_path, fmt):
    iid = finished(app, people)
    cli = _cli(app, database_url, defs_dir)
    out = tmp_path / "parkflow.backup"
    try:
        args = ["backup", str(out)] + (["--format", fmt] if fmt else [])
        made = cli(*args)
        assert made.exit_code == 0, made.output
        saved = snapshot(app)
        start(app, people)                                            # a change after the backup
        assert snapshot(app) != saved
        restored = cli("restore", "--yes", str(out))
        assert restored.exit_code == 0, restored.output
        assert "OK:" in restored.output and "chains verified" in restored.output
    finally:
        cli.close()
    app.extensions["parkflow"].db.dispose()
    assert snapshot(app) == saved
    assert [e.action for e in _events(app, iid)] == ["start", "claim", "approve", "claim", "approve"]
    with app.extensions["parkflow"].db.engine.connect() as conn:
        assert len(append_only.installed(conn)) == 6                 # the guard came back too
