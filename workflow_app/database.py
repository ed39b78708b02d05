"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production).

SQLite: every write transaction starts with `BEGIN IMMEDIATE` (a deferred transaction that
reads first and writes later fails with SQLITE_BUSY_SNAPSHOT when another writer got in
between, and busy_timeout does not help — see PITFALLS.md). pysqlite's own transaction handling
is switched off so that our BEGIN is the one that counts. Read-only sessions begin DEFERRED so
page views never queue behind writers. WAL + synchronous=NORMAL + a busy timeout.

PostgreSQL: psycopg 3, READ COMMITTED; actions lock the instance row with FOR UPDATE.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

READ_ONLY = "parkflow_read_only"
POOL_RECYCLE_SECONDS = 1800


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(url, echo=echo,
                               connect_args={"check_same_thread": False, "timeout": 30},
                               **({"poolclass": StaticPool} if memory else {}))
        _configure_sqlite(engine, memory)
        return engine
    # No pool_pre_ping: it costs a `SELECT 1` round trip at every checkout, i.e. on every
    # transaction (1 of ~10 round trips of an action). Connections are recycled after 30 minutes
    # instead (server-side idle timeouts, firewalls), and a connection broken by a server restart
    # fails the one request that meets it: SQLAlchemy recognises the disconnect and invalidates
    # the whole pool, so the next request connects afresh.
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=10, pool_pre_ping=False,
                         pool_recycle=POOL_RECYCLE_SECONDS)


def _configure_sqlite(engine: Engine, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Straight to the driver (not `exec_driver_sql`, whose cursor and event plumbing cost as
        # much as the BEGIN itself); a failure is still raised as SQLAlchemy's DBAPIError.
        statement = "BEGIN" if connection.get_execution_options().get(READ_ONLY, False) else "BEGIN IMMEDIATE"
        try:
            connection.connection.driver_connection.execute(statement)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(statement, (), exc, sqlite3.Error, dialect=connection.dialect) from exc


_CONNECTION = "parkflow_core_connection"
_BOUND = object()


def core_connection(session: Session) -> Connection:
    """The session's connection for Core statements on hot paths, after the flush
    `session.execute` would have done (rows added in this transaction are visible).

    Cached in `session.info` for the session's current transaction (`session.connection()` costs
    more than many of the statements run on it); a new transaction gets its connection afresh."""
    if session.autoflush:
        session.flush()
    cached = session.info.get(_CONNECTION)
    if cached is not None:
        if cached[0] is _BOUND:  # `Database.write()`: the session's one connection, for its life
            return cached[1]
        transaction = session.get_transaction()
        if transaction is not None and cached[0] is transaction:
            return cached[1]
    conn = session.connection()
    session.info[_CONNECTION] = (session.get_transaction(), conn)
    return conn


class Database:
    """The engine plus session factories: `write()` for actions, `read()` for pages, `peek()`
    for a lookup that needs no transaction around it."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5):
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, echo=echo, pool_size=pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._reader = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}),
                                    expire_on_commit=False)
        # PostgreSQL autocommit: each statement is its own atomic snapshot, and no BEGIN/ROLLBACK
        # round trips surround it (SQLite: an ordinary deferred read transaction).
        self._peeker = self._reader if self.is_sqlite else sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}, isolation_level="AUTOCOMMIT"),
            expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: commits when the block ends, rolls back on any exception."""
        # One connection, one transaction, the Session bound to that connection: hot paths find
        # it in `session.info` without asking the Session, and Core statements and the ORM share
        # the transaction. It begins with the first statement (not here: on SQLite BEGIN
        # IMMEDIATE takes the write lock, which a block should not hold before it needs it), by
        # whichever comes first — the Session (`rollback_only`: it never commits on its own) or a
        # prepared statement — and is committed here, after the final flush.
        with self.engine.connect() as conn:
            session = Session(bind=conn, join_transaction_mode="rollback_only", expire_on_commit=False)
            session.info[_CONNECTION] = (_BOUND, conn)
            try:
                yield session
                session.flush()
                if conn.in_transaction():
                    conn.commit()
            except BaseException:
                if conn.in_transaction():
                    conn.rollback()
                raise
            finally:
                session.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:  # closing ends the transaction; objects stay readable
            yield session

    @contextmanager
    def peek(self) -> Iterator[Session]:
        """For ONE read statement whose result stands on its own (an API token lookup): several
        statements here would each see a different moment on PostgreSQL — use `read()` then."""
        with self._peeker() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
