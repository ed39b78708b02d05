"""The three ways of doing one action of the canonical workload, behind one small interface.

Each driver does, per action, one durable transaction including its trail row:

* `start(k)`          — create instance k with its first (review A) task and trail event 1;
* `act(i, task, s, k)` — decide the open task of step `s`: lock the instance, close the task,
  open the next one (none after the final approval), update the instance with a version check,
  append one hash-chained trail row. Returns the id of the task opened, or None at the end.

`RawSqlite` and `RawPg` are the database limit: the minimal statements on the product's own
schema (same tables, indexes and foreign keys, created by Alembic), with a SHA-256 chain over the
row. `Service` is ParkFlow for real: `Workflow.start` / `Workflow.act` through `Database.write()`.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from .common import CHAIN, FORM, PROCESS_KEY, ROOT, SUBMIT_DEPARTMENT, People, sqlite_path

GENESIS = "0" * 64
DUE = timedelta(days=7)


def form(k: int) -> dict:
    return {**FORM, "project_name": f"{FORM['project_name']} {k}"}


def _chain_hash(prev: str, *fields: object) -> str:
    digest = hashlib.sha256(prev.encode())
    for f in fields:
        digest.update(b"\x1f" + str(f).encode())
    return digest.hexdigest()


class Service:
    """ParkFlow's service layer: permissions, compiled definition, transitions, routing, the
    working-day calendar and the hash-chained trail, one `Database.write()` per action."""

    def __init__(self, url: str, people: People, defs: str):
        from workflow_app.database import Database
        from workflow_app.engine.calendar import WorkingCalendar
        from workflow_app.engine.runtime import Request
        from workflow_app.services.definitions import DefinitionStore
        from workflow_app.services.workflow import Workflow

        self.db = Database(url)
        self.workflow = Workflow(DefinitionStore(defs),
                                 WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars"))
        self.people = people
        self.Request = Request

    def start(self, k: int) -> tuple[int, int]:
        with self.db.write() as s:
            r = self.workflow.start(s, self.people.submitter, PROCESS_KEY, form(k),
                                    department=SUBMIT_DEPARTMENT)
        return r.instance_id, r.opened_task_ids[0]

    def act(self, instance_id: int, task_id: int, step: int, k: int) -> int | None:
        _name, department, role = CHAIN[step]
        user = self.people.reviewers[step][k % len(self.people.reviewers[step])]
        with self.db.write() as s:
            r = self.workflow.act(s, user, instance_id, self.Request("approve", task_id),
                                  department=department, role=role)
        return r.opened_task_ids[0] if r.opened_task_ids else None

    def backend_pid(self) -> int | None:
        if self.db.is_sqlite:
            return None
        with self.db.engine.connect() as c:  # one client thread: the pool hands out this connection again
            return c.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    def close(self) -> None:
        self.db.dispose()


# ---------------------------------------------------------------- raw SQLite
_SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"   # how SQLAlchemy stores DateTime on SQLite

_INSERT_INSTANCE = (
    "INSERT INTO process_instance (definition_id, process_key, title, subject_kind, status, "
    "current_step, round, form_data, submitter_id, submitter_department, version, trail_head, "
    "trail_count, created_at, updated_at) VALUES ({p}, {p}, {p}, 'none', 'running', {p}, 2, {j}, "
    "{p}, {p}, 1, '', 0, {p}, {p})")
_INSERT_TASK = (
    "INSERT INTO task (instance_id, step, round, seq, origin, status, department, role, "
    "created_at, deadline_days, due_at, due_provisional, escalation_level) "
    "VALUES ({p}, {p}, {p}, 10, 'queue', 'open', {p}, {p}, {p}, 5, {p}, {f}, 0)")
_INSERT_TRAIL = (
    "INSERT INTO trail_event (instance_id, seq, created_at, action, actor_id, actor_name, "
    "actor_department, actor_role, task_id, from_step, to_step, definition_id, definition_hash, "
    "form_hash, details, prev_hash, hash) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, "
    "{p}, {p}, {p}, {p}, {j}, {p}, {p})")
_LOCK = (
    "SELECT i.version, i.round, i.trail_head, i.trail_count, t.id FROM process_instance i "
    "JOIN task t ON t.instance_id = i.id AND t.round = i.round AND t.status = 'open' "
    "WHERE i.id = {p} AND i.status = 'running'")
_CLOSE_TASK = ("UPDATE task SET status = 'done', decision = 'approve', assignee_id = {p}, "
               "acted_by_id = {p}, completed_at = {p} WHERE id = {p}")
_UPDATE_INSTANCE = (
    "UPDATE process_instance SET version = {p}, round = {p}, current_step = {p}, status = {p}, "
    "updated_at = {p}, ended_at = {p}, trail_head = {p}, trail_count = {p} "
    "WHERE id = {p} AND version = {p}")
_SET_HEAD = "UPDATE process_instance SET trail_head = {p}, trail_count = 1 WHERE id = {p}"


def _sql(template: str, pg: bool) -> str:
    return template.format(p="%s" if pg else "?", j="%s::jsonb" if pg else "?",
                           f="false" if pg else "0")


class _Raw:
    pg = False

    def backend_pid(self) -> int | None:
        return self.conn.info.backend_pid if self.pg else None

    def __init__(self, people: People):
        self.people = people
        self.form_hash = hashlib.sha256(json.dumps(FORM, sort_keys=True).encode()).hexdigest()
        self.def_hash = "d" * 64
        self.sql = {name: _sql(t, self.pg) for name, t in (
            ("instance", _INSERT_INSTANCE), ("task", _INSERT_TASK), ("trail", _INSERT_TRAIL),
            ("lock", _LOCK + (" FOR UPDATE OF i" if self.pg else "")), ("close", _CLOSE_TASK),
            ("update", _UPDATE_INSTANCE), ("head", _SET_HEAD))}

    def ts(self, now: datetime):
        return now if self.pg else now.strftime(_SQLITE_TS)

    def trail_params(self, iid, seq, now, action, actor, dept, role, task, from_step, to_step,
                     details, prev):
        ts = self.ts(now)
        h = _chain_hash(prev, iid, seq, ts, action, actor, dept, role, task, from_step, to_step,
                        self.form_hash, details)
        return (iid, seq, ts, action, actor, f"u{actor}", dept, role, task, from_step, to_step,
                self.people.definition_id, self.def_hash, self.form_hash, details, prev, h), h


class RawSqlite(_Raw):
    """Plain sqlite3, WAL + synchronous=NORMAL, BEGIN IMMEDIATE, foreign keys on (as the app)."""

    def __init__(self, url: str, people: People, defs: str | None = None):
        import sqlite3

        super().__init__(people)
        self.conn = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=30)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.cur = self.conn.cursor()

    def start(self, k: int) -> tuple[int, int]:
        now, c, sql, p = datetime.now(timezone.utc), self.cur, self.sql, self.people
        ts = self.ts(now)
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(sql["instance"], (p.definition_id, PROCESS_KEY, form(k)["project_name"],
                                        "review_a", json.dumps(form(k)), p.submitter,
                                        SUBMIT_DEPARTMENT, ts, ts))
            iid = c.lastrowid
            _s, dept, role = CHAIN[0]
            c.execute(sql["task"], (iid, "review_a", 2, dept, role, ts, self.ts(now + DUE)))
            tid = c.lastrowid
            params, h = self.trail_params(iid, 1, now, "start", p.submitter, SUBMIT_DEPARTMENT,
                                          "submitter", None, None, "review_a", "{}", GENESIS)
            c.execute(sql["trail"], params)
            c.execute(sql["head"], (h, iid))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return iid, tid

    def act(self, iid: int, tid: int, step: int, k: int) -> int | None:
        now, c, sql = datetime.now(timezone.utc), self.cur, self.sql
        ts = self.ts(now)
        name, dept, role = CHAIN[step]
        user = self.people.reviewers[step][k % len(self.people.reviewers[step])]
        last = step == len(CHAIN) - 1
        c.execute("BEGIN IMMEDIATE")
        try:
            row = c.execute(sql["lock"], (iid,)).fetchone()
            if row is None or row[4] != tid:
                raise RuntimeError(f"instance {iid}: task {tid} is not open")
            version, round_, head, count, _tid = row
            c.execute(sql["close"], (user, user, ts, tid))
            new = None
            to_step = "done" if last else CHAIN[step + 1][0]
            if not last:
                _n, ndept, nrole = CHAIN[step + 1]
                c.execute(sql["task"], (iid, to_step, round_ + 1, ndept, nrole, ts, self.ts(now + DUE)))
                new = c.lastrowid
            params, h = self.trail_params(iid, count + 1, now, "approve", user, dept, role, tid, name,
                                          to_step, '{"verdict":"approved"}', head)
            c.execute(sql["trail"], params)
            c.execute(sql["update"], (version + 1, round_ + 1, to_step, "approved" if last else "running",
                                      ts, ts if last else None, h, count + 1, iid, version))
            if c.rowcount != 1:
                raise RuntimeError("version check failed")
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return new

    def close(self) -> None:
        self.conn.close()


class RawPg(_Raw):
    """Plain psycopg 3, one transaction per action, `SELECT ... FOR UPDATE`, READ COMMITTED."""

    pg = True

    def __init__(self, url: str, people: People, defs: str | None = None):
        import psycopg

        super().__init__(people)
        self.conn = psycopg.connect(url)
        self.cur = self.conn.cursor()

    def start(self, k: int) -> tuple[int, int]:
        now, c, sql, p = datetime.now(timezone.utc), self.cur, self.sql, self.people
        try:
            iid = c.execute(sql["instance"] + " RETURNING id", (
                p.definition_id, PROCESS_KEY, form(k)["project_name"], "review_a",
                json.dumps(form(k)), p.submitter, SUBMIT_DEPARTMENT, now, now)).fetchone()[0]
            _s, dept, role = CHAIN[0]
            tid = c.execute(sql["task"] + " RETURNING id",
                            (iid, "review_a", 2, dept, role, now, now + DUE)).fetchone()[0]
            params, h = self.trail_params(iid, 1, now, "start", p.submitter, SUBMIT_DEPARTMENT,
                                          "submitter", None, None, "review_a", "{}", GENESIS)
            c.execute(sql["trail"], params)
            c.execute(sql["head"], (h, iid))
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return iid, tid

    def act(self, iid: int, tid: int, step: int, k: int) -> int | None:
        now, c, sql = datetime.now(timezone.utc), self.cur, self.sql
        name, dept, role = CHAIN[step]
        user = self.people.reviewers[step][k % len(self.people.reviewers[step])]
        last = step == len(CHAIN) - 1
        try:
            row = c.execute(sql["lock"], (iid,)).fetchone()
            if row is None or row[4] != tid:
                raise RuntimeError(f"instance {iid}: task {tid} is not open")
            version, round_, head, count, _tid = row
            c.execute(sql["close"], (user, user, now, tid))
            new = None
            to_step = "done" if last else CHAIN[step + 1][0]
            if not last:
                _n, ndept, nrole = CHAIN[step + 1]
                new = c.execute(sql["task"] + " RETURNING id", (iid, to_step, round_ + 1, ndept, nrole,
                                                                now, now + DUE)).fetchone()[0]
            params, h = self.trail_params(iid, count + 1, now, "approve", user, dept, role, tid, name,
                                          to_step, '{"verdict":"approved"}', head)
            c.execute(sql["trail"], params)
            c.execute(sql["update"], (version + 1, round_ + 1, to_step, "approved" if last else "running",
                                      now, now if last else None, h, count + 1, iid, version))
            if c.rowcount != 1:
                raise RuntimeError("version check failed")
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return new

    def close(self) -> None:
        self.conn.close()


DRIVERS = {"service": Service, "raw_sqlite": RawSqlite, "raw_pg": RawPg}
