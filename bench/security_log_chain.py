"""What chaining the security log costs: transactions that write one security event, with the
hash chain (head row locked and updated at flush) and without it.

    .venv/bin/python -m bench.security_log_chain sqlite:////tmp/chain.db
    .venv/bin/python -m bench.security_log_chain postgresql+psycopg://postgres@127.0.0.1:5432/DB

The database is migrated (SQLite) or must be migrated already (PostgreSQL: an empty scratch
database after `flask db upgrade`); its rows are deleted at the start and the end.
"""
from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.conftest import empty, migrate
from workflow_app.database import Database
from workflow_app.services import accounts, security_log

N = 500


def per_transaction(db: Database, n: int = N) -> float:
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    for i in range(n):
        with db.write() as s:
            accounts.log(s, "login", now=now, username=f"u{i}", ip="127.0.0.1")
    return (time.perf_counter() - started) / n * 1e6


def main(url: str) -> None:
    if url.startswith("sqlite"):
        migrate(url)
    db = Database(url)
    empty(db)
    try:
        security_log.install()
        chained = per_transaction(db)
        event.remove(Session, "before_flush", security_log._chain_new_rows)
        security_log._installed = True  # keep it off for the comparison run
        plain = per_transaction(db)
    finally:
        empty(db)
        db.dispose()
    print(f"{db.engine.dialect.name}: {chained:.0f} µs per transaction with one chained security event, "
          f"{plain:.0f} µs unchained ({N} each)")


if __name__ == "__main__":
    main(sys.argv[1])
