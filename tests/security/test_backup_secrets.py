"""Backups: the PostgreSQL password never on pg_dump's / pg_restore's command line (a private
PGPASSFILE instead, removed afterwards), and the JSON-lines dump reads one snapshot (a row
written during the dump is not half in it)."""
from __future__ import annotations

import json
import os
import stat

import pytest

from workflow_app.database import Database
from workflow_app.services import backup as backups

PASSWORD = "s3cr:et\\pw"


@pytest.fixture
def captured(monkeypatch):
    calls = []

    def fake_run(argv, capture_output, text, timeout, env=None):
        passfile = (env or {}).get("PGPASSFILE")
        seen = None
        if passfile:
            mode = stat.S_IMODE(os.stat(passfile).st_mode)
            with open(passfile, encoding="utf-8") as f:
                seen = (f.read(), mode)
        calls.append({"argv": argv, "env": env, "passfile": passfile, "seen": seen})

        class Done:
            returncode = 0
            stderr = ""
        return Done()

    monkeypatch.setattr(backups.subprocess, "run", fake_run)
    monkeypatch.setattr(backups.shutil, "which", lambda name: f"/usr/bin/{name}")
    return calls


@pytest.mark.parametrize("operation", ["backup", "restore"])
def test_the_password_is_never_on_the_command_line(captured, tmp_path, operation):
    db = Database(f"postgresql+psycopg://parkflow:{PASSWORD.replace(':', '%3A').replace(chr(92), '%5C')}"
                  f"@db.example:5433/parkflow")
    try:
        if operation == "backup":
            assert backups.backup(db, tmp_path / "b.dump") == "pg_custom"
        else:
            source = tmp_path / "b.dump"
            source.write_bytes(backups.PG_MAGIC + b"rest")
            assert backups.restore(db, source) == "pg_custom"
    finally:
        db.dispose()
    [call] = captured
    assert not any("s3cr" in part for part in call["argv"]), call["argv"]
    assert any("parkflow@db.example:5433/parkflow" in part for part in call["argv"])
    assert "PGPASSWORD" not in call["env"]
    content, mode = call["seen"]
    assert content == "*:*:*:*:s3cr\\:et\\\\pw\n" and mode == 0o600
    assert not os.path.exists(call["passfile"])          # removed afterwards


def test_without_a_password_in_the_url_libpq_finds_its_own(captured, tmp_path):
    db = Database("postgresql+psycopg://parkflow@db.example/parkflow")
    try:
        backups.backup(db, tmp_path / "b.dump")
    finally:
        db.dispose()
    [call] = captured
    assert call["env"] is None and call["passfile"] is None


def test_jsonl_dump_reads_one_snapshot(db, monkeypatch, tmp_path, clock):
    if db.is_sqlite:
        pytest.skip("SQLite's own transaction is the snapshot (and the default is the backup API)")
    from sqlalchemy import func, select

    from workflow_app.models import SecurityEvent
    from workflow_app.services import accounts

    with db.write() as s:
        accounts.log(s, "login", now=clock(), username="before")
    real, written = backups._plain, []

    def write_meanwhile(value):
        if not written:   # while the first table is being read, another transaction commits
            written.append(True)
            with db.write() as s:
                accounts.log(s, "login", now=clock(), username="during")
        return real(value)

    monkeypatch.setattr(backups, "_plain", write_meanwhile)
    out = tmp_path / "dump.jsonl"
    backups.backup(db, out, fmt="jsonl")
    assert written
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(SecurityEvent)) == 2
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()[1:]]
    names = [r["r"]["username"] for r in rows if r["t"] == "security_event"]
    assert names == ["before"]
