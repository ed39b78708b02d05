"""Tampering as a database superuser would do it: with the append-only guard switched off.

The triggers of migration 0005 refuse UPDATE/DELETE on the evidence tables, but whoever owns the
tables can disable them; the hash chain is what must still catch the edit. Tests that tamper go
through `superuser(db)` so they exercise the chain, not the trigger (tests/security/test_evidence.py
covers the trigger itself)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection

from workflow_app.database import Database
from workflow_app.services import append_only


@contextmanager
def superuser(db: Database) -> Iterator[Connection]:
    """One committed transaction with the evidence tables' guard lifted."""
    with db.engine.begin() as conn, append_only.suspended(conn):
        yield conn
