"""Round trips per action: which statements ParkFlow sends for one start and one approval.

On PostgreSQL an action costs mostly its round trips (PITFALLS.md), so the list of statements,
beside the raw driver's fixed count, explains most of the gap. The BEGIN/COMMIT pair is counted
too, and pings if `pool_pre_ping` were ever switched on (the product's engine does not ping).
Prepared statements (`workflow_app.prepared`) fire `before_cursor_execute` like SQLAlchemy's own,
so they are counted. Not timed; run once per backend.
"""
from __future__ import annotations

from sqlalchemy import event

from .common import CHAIN, People
from .drivers import Service

# The raw drivers, by construction: BEGIN, then these, then COMMIT.
RAW_STATEMENTS = {
    "start": ["INSERT process_instance", "INSERT task", "INSERT trail_event", "UPDATE process_instance (head)"],
    "act": ["SELECT instance JOIN open task (FOR UPDATE on PostgreSQL)", "UPDATE task",
            "INSERT task (next step)", "INSERT trail_event", "UPDATE process_instance (version check)"],
}


def count(url: str, people: People, defs: str) -> dict:
    """Statements of one start and of one approval (review A), with their SQL heads."""
    driver = Service(url, people, defs)
    engine = driver.db.engine
    log: list[str] = []

    def on_execute(_conn, _cursor, statement, _params, _context, _many):
        log.append(" ".join(statement.split())[:110])

    def on_begin(_conn):
        # SQLite: the product's begin event sends BEGIN IMMEDIATE straight to the driver (no
        # cursor event), so it is logged here.
        log.append("BEGIN" if engine.dialect.name != "sqlite" else "BEGIN IMMEDIATE (begin event, to the driver)")

    def on_commit(_conn):
        log.append("COMMIT")

    def on_rollback(_conn):
        log.append("ROLLBACK")

    ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection):
        log.append("SELECT 1 (pool_pre_ping)")
        return ping(dbapi_connection)

    try:
        driver.start(0)  # warm caches: compiled spec, machine, calendar, statement cache
        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine, "begin", on_begin)
        event.listen(engine, "commit", on_commit)
        event.listen(engine, "rollback", on_rollback)
        engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]
        log.clear()
        iid, tid = driver.start(1)
        start = list(log)
        log.clear()
        driver.act(iid, tid, 0, 0)
        act = list(log)
    finally:
        engine.dialect.do_ping = ping  # type: ignore[method-assign]
        driver.close()

    def trips(lines: list[str]) -> int:
        return len(lines)

    return {"backend": engine.dialect.name, "start": start, "act": act,
            "start_round_trips": trips(start), "act_round_trips": trips(act),
            "raw_start_round_trips": len(RAW_STATEMENTS["start"]) + 2,
            "raw_act_round_trips": len(RAW_STATEMENTS["act"]) + 2, "steps": len(CHAIN)}


def render(result: dict) -> str:
    lines = [f"# statements per action, ParkFlow service layer on {result['backend']}", ""]
    for phase in ("start", "act"):
        lines.append(f"## {phase}: {result[phase + '_round_trips']} round trips "
                     f"(raw driver: {result['raw_' + phase + '_round_trips']}, incl. BEGIN and COMMIT)")
        lines += [f"  {i + 1:2d}. {s}" for i, s in enumerate(result[phase])]
        lines.append("")
    return "\n".join(lines)


def count_http(url: str, people: People, defs: str) -> dict:
    """Statements one `POST /api/v1/instances/{id}/actions` (approve) sends, end to end through
    the Flask app (authentication, visibility check, the action, the response body)."""
    import os

    from .http_load import make_tokens
    from config import Config

    submit_token, review_tokens = make_tokens(url, people)

    class BenchConfig(Config):
        DATABASE_URL = url
        PROCESS_DEFS = defs
        RATELIMIT_STORAGE_URI = "memory://"
        SECRET_KEY = os.urandom(16).hex()
        DEMO_ALLOWED = False

    from workflow_app import create_app

    app = create_app(BenchConfig)
    engine = app.extensions["parkflow"].db.engine
    client = app.test_client()
    log: list[str] = []

    def on_execute(_conn, _cursor, statement, _params, _context, _many):
        log.append(" ".join(statement.split())[:110])

    ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection):
        log.append("SELECT 1 (pool_pre_ping)")
        return ping(dbapi_connection)

    def post(path: str, body: dict, token: str):
        r = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (200, 201), r.get_data(as_text=True)[:300]
        return r.get_json()

    start_body = {"process": "bench_chain", "department": "zhentou",
                  "data": {"project_name": "p", "investment_wan": "1"}}
    try:
        first = post("/api/v1/instances", start_body, submit_token)["result"]  # warm; tokens touched
        post(f"/api/v1/instances/{first['instance_id']}/actions",
             {"action": "approve", "task_id": first["opened_task_ids"][0]}, review_tokens[0][0])
        second = post("/api/v1/instances", start_body, submit_token)["result"]
        def sent(conn, statement: str) -> None:  # an autocommit connection sends no BEGIN/ROLLBACK
            if not conn.connection.driver_connection.autocommit:
                log.append(statement)

        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine, "begin", lambda c: sent(c, "BEGIN"))
        event.listen(engine, "commit", lambda c: sent(c, "COMMIT"))
        event.listen(engine, "rollback", lambda c: sent(c, "ROLLBACK (end of a read session)"))
        engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]
        post(f"/api/v1/instances/{second['instance_id']}/actions",
             {"action": "approve", "task_id": second["opened_task_ids"][0]}, review_tokens[0][0])
        act = list(log)
    finally:
        engine.dialect.do_ping = ping  # type: ignore[method-assign]
        app.extensions["parkflow"].db.dispose()
    return {"backend": "http", "act": act, "act_round_trips": len(act)}


def render_http(result: dict) -> str:
    lines = [f"# one HTTP approve: POST /api/v1/instances/{{id}}/actions on PostgreSQL: "
             f"{result['act_round_trips']} round trips (incl. pings, BEGIN, COMMIT)", ""]
    lines += [f"  {i + 1:2d}. {s}" for i, s in enumerate(result["act"])]
    return "\n".join(lines) + "\n"
