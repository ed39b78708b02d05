"""Backup and restore of the whole database (数据备份恢复), then proof the trail survived.

- SQLite: the sqlite3 online-backup API (a consistent copy even while the app writes).
- PostgreSQL: `pg_dump --format=custom` / `pg_restore --clean --single-transaction` when the
  client tools are installed; otherwise (or with `fmt="jsonl"`) a portable JSON-lines dump of
  every table, restored in one transaction in dependency order.

A restore replaces the database's contents; the caller then verifies every chain
(services/archive.verify) and reports. The JSON-lines format carries the schema revision and is
refused by a database at another revision (restore into a freshly migrated database).

One consistent snapshot: the SQLite backup API and pg_dump each copy one moment; the JSON-lines
dump reads every table inside ONE transaction (REPEATABLE READ, read-only on PostgreSQL; on SQLite
the engine's transaction), so a row written meanwhile is in all tables or in none.

The PostgreSQL password never appears on a command line (where `ps` shows it to every local
user): pg_dump / pg_restore get the URL without it and read it from a private PGPASSFILE (mode
0600, removed afterwards) — the file libpq reads instead of ~/.pgpass.
"""
from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Date, DateTime, LargeBinary, Numeric, insert, text
from sqlalchemy.engine import make_url

from ..database import Database
from ..models import Base
from . import append_only

FORMAT = "parkflow-backup-v1"
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"


class BackupError(RuntimeError):
    pass


def _libpq_url(db: Database) -> str:
    """The database URL for libpq tools, WITHOUT the password (see `_pg_tool`)."""
    url = make_url(db.url).set(drivername="postgresql")._replace(password=None)  # set() ignores None
    return url.render_as_string(hide_password=False)


def _pgpass_line(password: str) -> str:
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


def _pg_tool(db: Database, argv: list[str]) -> None:
    """Run pg_dump / pg_restore with the password in a private PGPASSFILE, not in argv."""
    import os
    import tempfile

    password = make_url(db.url).password
    if not password:  # the operator's own PGPASSWORD / ~/.pgpass / peer authentication
        _run(argv)
        return
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    fd, path = tempfile.mkstemp(prefix="parkflow-pgpass-")
    try:
        os.fchmod(fd, 0o600)  # libpq ignores a password file others can read
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_pgpass_line(str(password)))
        _run(argv, env={**env, "PGPASSFILE": path})
    finally:
        os.unlink(path)


def backup(db: Database, out: Path, *, fmt: str | None = None) -> str:
    """Write a backup of `db` to `out`; returns the format used (sqlite, pg_custom, jsonl)."""
    out = Path(out)
    if out.exists():
        raise BackupError(f"{out} exists; choose a new file")
    if db.is_sqlite and fmt in (None, "sqlite"):
        raw = db.engine.raw_connection()
        try:
            target = sqlite3.connect(out)
            with target:
                raw.driver_connection.backup(target)
            target.close()
        finally:
            raw.close()
        return "sqlite"
    if not db.is_sqlite and fmt in (None, "pg_custom") and shutil.which("pg_dump"):
        _pg_tool(db, ["pg_dump", "--format=custom", "--no-owner", f"--file={out}", f"--dbname={_libpq_url(db)}"])
        return "pg_custom"
    if fmt not in (None, "jsonl"):
        raise BackupError(f"format {fmt} is not available for this database")
    _dump_jsonl(db, out)
    return "jsonl"


def restore(db: Database, source: Path) -> str:
    """Replace the contents of `db` with the backup in `source`; returns the format."""
    source = Path(source)
    with source.open("rb") as f:
        magic = f.read(16)
    if magic.startswith(SQLITE_MAGIC):
        if not db.is_sqlite:
            raise BackupError("a SQLite backup cannot be restored into PostgreSQL; use the JSON-lines format")
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        db.engine.dispose()
        raw = db.engine.raw_connection()
        try:
            src.backup(raw.driver_connection)
        finally:
            raw.close()
            src.close()
        db.engine.dispose()
        return "sqlite"
    if magic.startswith(PG_MAGIC):
        if db.is_sqlite:
            raise BackupError("a pg_dump backup restores into PostgreSQL only")
        if not shutil.which("pg_restore"):
            raise BackupError("pg_restore is not installed")
        db.engine.dispose()
        _pg_tool(db, ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                      f"--dbname={_libpq_url(db)}", str(source)])
        return "pg_custom"
    _load_jsonl(db, source)
    return "jsonl"


def _run(argv: list[str], env: dict | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, env=env)
    if done.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {done.stderr.strip()[:2000]}")


def _revision(conn) -> str | None:
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - a database without Alembic's table has no revision
        return None


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _dump_jsonl(db: Database, out: Path) -> None:
    tables = Base.metadata.sorted_tables
    with db.engine.connect() as conn, out.open("x", encoding="utf-8") as f:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        conn.begin()  # every table from the same snapshot (ended when the connection closes)
        f.write(json.dumps({"format": FORMAT, "dialect": db.engine.dialect.name, "revision": _revision(conn),
                            "created_at": datetime.now().astimezone().isoformat(),
                            "tables": [t.name for t in tables]}) + "\n")
        for table in tables:
            order = list(table.primary_key.columns) or list(table.columns)[:1]
            for row in conn.execute(table.select().order_by(*order)).mappings():
                f.write(json.dumps({"t": table.name, "r": {k: _plain(v) for k, v in row.items()}},
                                   ensure_ascii=False) + "\n")


def _decode(table, row: dict) -> dict:
    out = {}
    for name, value in row.items():
        column = table.columns[name]
        kind = getattr(column.type, "impl", column.type)  # UTCDateTime decorates DateTime
        if value is not None and isinstance(value, str):
            if isinstance(kind, DateTime):
                value = datetime.fromisoformat(value)
            elif isinstance(kind, Date):
                value = date.fromisoformat(value)
            elif isinstance(kind, Numeric):
                value = Decimal(value)
            elif isinstance(kind, LargeBinary):  # attachments: base64 in the dump
                value = base64.b64decode(value)
        out[name] = value
    return out


def _load_jsonl(db: Database, source: Path) -> None:
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    with source.open(encoding="utf-8") as f:
        header = json.loads(f.readline() or "{}")
        if header.get("format") != FORMAT:
            raise BackupError("not a ParkFlow backup")
        with db.engine.begin() as conn:
            if header.get("revision") != _revision(conn):
                raise BackupError(f"the backup is of schema revision {header.get('revision')}, the database "
                                  f"is at {_revision(conn)}: migrate the database to the same revision first")
            with append_only.suspended(conn):
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(table.delete())
                batch: list[dict] = []
                current = None
                for line in f:
                    item = json.loads(line)
                    if item["t"] != current and batch:
                        conn.execute(insert(tables[current]), batch)
                        batch = []
                    current = item["t"]
                    batch.append(_decode(tables[current], item["r"]))
                    if len(batch) >= 1000:
                        conn.execute(insert(tables[current]), batch)
                        batch = []
                if batch:
                    conn.execute(insert(tables[current]), batch)
            if conn.dialect.name == "postgresql":
                for table in Base.metadata.sorted_tables:
                    pk = list(table.primary_key.columns)
                    if len(pk) == 1 and _is_int(pk[0]):
                        conn.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', '{pk[0].name}'), "
                            f"COALESCE((SELECT max(\"{pk[0].name}\") FROM \"{table.name}\"), 0) + 1, false)"))


def _is_int(column) -> bool:
    try:
        return column.type.python_type is int
    except NotImplementedError:
        return False
