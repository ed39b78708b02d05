"""The database-level append-only guard on the evidence tables (`trail_event`, `security_event`).

Migration 0005 installs triggers that reject UPDATE, DELETE (and, on PostgreSQL, TRUNCATE) on
both tables, so a bug or an injected statement in the application cannot rewrite history. They
are a guard, not the proof: whoever owns the tables can disable them, which is why the trail is
also hash-chained and `flask trail verify` catches such tampering.

`suspended(connection)` lifts the guard for one transaction of sanctioned maintenance (archiving,
restoring a backup, emptying a test database). It works on the transaction's own connection:
- PostgreSQL: `ALTER TABLE ... DISABLE TRIGGER USER` and `ENABLE` again before the block ends.
  DDL is transactional and takes an ACCESS EXCLUSIVE lock, so no other session can write (or
  tamper) in the window, and a rollback re-enables the triggers. Needs the table owner.
- SQLite: the triggers are read from `sqlite_master`, dropped, and recreated from that same SQL
  (so this module never needs to know what the migration wrote); DDL is transactional there too.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection, text

TABLES = ("trail_event", "security_event", "trail_anchor")


@contextmanager
def suspended(connection: Connection) -> Iterator[None]:
    """Run the block with the append-only triggers off; they are back on when it ends."""
    if connection.dialect.name == "sqlite":
        names = ", ".join(f"'{t}'" for t in TABLES)
        triggers = connection.exec_driver_sql(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({names})").all()
        for name, _sql in triggers:
            connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
        yield
        for _name, sql in triggers:
            connection.exec_driver_sql(sql)
        return
    for table in TABLES:
        connection.exec_driver_sql(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
    yield
    for table in TABLES:
        connection.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')


def installed(connection: Connection) -> set[str]:
    """Names of the append-only triggers present (for health checks and tests)."""
    if connection.dialect.name == "sqlite":
        rows = connection.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND instr(name, '_append_only_') > 0"))
    else:
        rows = connection.execute(text(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND strpos(tgname, '_append_only_') > 0 "
            "AND tgenabled <> 'D'"))
    return {r[0] for r in rows}
