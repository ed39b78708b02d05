"""Inbox latency at a million tasks: `queries.my_tasks` (待办, my open tasks) and
`queries.queue_tasks` (部门待认领, a department queue), first page, newest first.

Each query runs as a page view would: its own read session from `Database.read()` (so the pool
checkout, BEGIN and ROLLBACK are inside the measurement; the engine does no pre-ping, see
`database.make_engine`), through the product's query function
including building the row objects. Users and queues are drawn at random (fixed seed). The plan
of each query is saved with `EXPLAIN (ANALYZE, BUFFERS)` for its heaviest user/queue and for a
typical one.
"""
from __future__ import annotations

import os
import random
import re
import time

from .common import ROOT, Budget, percentile, results_dir

_INDEX = re.compile(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)")
_SEQ = re.compile(r"Seq Scan on (\w+)")


def measure(url: str, queries: int, budget_s: float, seed: int = 11, prefix: str = "explain") -> dict:
    from sqlalchemy import event, text

    from workflow_app.database import Database
    from workflow_app.services import queries as q

    db = Database(url)
    try:
        with db.read() as s:
            users = [r[0] for r in s.execute(text("SELECT id FROM app_user ORDER BY id"))]
            queues = [tuple(r) for r in s.execute(text(
                "SELECT DISTINCT department_code, role FROM membership ORDER BY 1, 2"))]
            heavy_user = s.execute(text(
                "SELECT assignee_id FROM task WHERE status = 'open' AND assignee_id IS NOT NULL "
                "GROUP BY assignee_id ORDER BY count(*) DESC, assignee_id LIMIT 1")).scalar()
            heavy_queue = tuple(s.execute(text(
                "SELECT department, role FROM task WHERE status = 'open' AND assignee_id IS NULL "
                "GROUP BY department, role ORDER BY count(*) DESC LIMIT 1")).one())
        rng = random.Random(seed)
        cases = {
            "my_tasks": (lambda s, u: q.my_tasks(s, u), [rng.choice(users) for _ in range(queries)]),
            "queue_tasks": (lambda s, m: q.queue_tasks(s, [m]), [rng.choice(queues) for _ in range(queries)]),
        }
        out: dict = {}
        for name, (fn, args) in cases.items():
            for a in args[:10]:  # warm: statement cache, connection, buffers
                with db.read() as s:
                    fn(s, a)
            budget, times, rows = Budget(budget_s), [], 0
            for a in args:
                if budget.expired():
                    break
                t = time.perf_counter()
                with db.read() as s:
                    rows += len(fn(s, a))
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            out[name] = {"queries": len(times), "truncated": len(times) < len(args),
                         "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
                         "p99_ms": percentile(times, 99), "max_ms": times[-1] if times else None,
                         "mean_rows": rows / len(times) if times else 0}

        # EXPLAIN the exact SQL the product sends (captured), heaviest and a typical argument.
        captured: list[tuple[str, dict]] = []

        def capture(_c, _cur, statement, parameters, _ctx, _many):
            captured.append((statement, parameters))

        plans = {}
        for name, fn, arg_list in (("my_tasks", cases["my_tasks"][0], [heavy_user, cases["my_tasks"][1][0]]),
                                   ("queue_tasks", cases["queue_tasks"][0], [heavy_queue, cases["queue_tasks"][1][0]])):
            texts = []
            for label, arg in zip(("heaviest", "typical"), arg_list):
                captured.clear()
                event.listen(db.engine, "before_cursor_execute", capture)
                try:
                    with db.read() as s:
                        fn(s, arg)
                finally:
                    event.remove(db.engine, "before_cursor_execute", capture)
                statement, params = captured[-1]
                raw = db.engine.raw_connection()
                try:
                    cur = raw.cursor()
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                    plan = "\n".join(r[0] for r in cur.fetchall())
                    raw.rollback()
                finally:
                    raw.close()
                texts.append(f"-- {name}, {label} argument: {arg!r}\n-- SQL as sent by "
                             f"workflow_app.services.queries.{name}:\n{statement}\n-- params: {params}\n\n{plan}\n")
                plans.setdefault(name, {})[label] = {
                    "indexes": sorted(set(_INDEX.findall(plan))), "seq_scans": sorted(set(_SEQ.findall(plan))),
                    "execution_ms": _exec_ms(plan)}
            path = results_dir() / f"{prefix}_{name}.txt"
            path.write_text("\n\n".join(texts), encoding="utf-8")
            out[name]["plan"] = plans[name]
            out[name]["explain_file"] = str(path.relative_to(ROOT))
        out["heavy_user"], out["heavy_queue"] = heavy_user, list(heavy_queue)
        return out
    finally:
        db.dispose()


def _exec_ms(plan: str) -> float | None:
    m = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return float(m.group(1)) if m else None


def verify_trail(url: str, workers: int = 1) -> dict:
    """`services.trail.verify` over the whole database: with `workers=1` exactly what `flask trail
    verify` runs; with more, the same call with `workers=` (ranges verified in child processes).

    CPU per event: the verifying processes (this one + its children, from getrusage) and the
    PostgreSQL backends serving them (each backend's own /proc counters, sampled every 50 ms
    while it lives: the last < 50 ms of a backend may be missed)."""
    import resource
    import threading

    import psycopg

    from workflow_app.database import Database
    from workflow_app.services.trail import verify

    tag = f"parkflow_bench_verify_{os.getpid()}"
    db = Database(url + ("&" if "?" in url else "?") + f"application_name={tag}")
    seen: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not done.is_set():
                for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (tag,)):
                    cpu = _proc_cpu(pid)
                    if cpu is not None:
                        seen[pid] = max(cpu, seen.get(pid, 0.0))
                done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        before = _rusage(resource)
        t = time.perf_counter()
        with db.read() as s:
            result = verify(s, workers=workers)
        seconds = time.perf_counter() - t
        client = _rusage(resource) - before
    finally:
        done.set()
        sampler.join(timeout=10)
        db.dispose()
    n = result.checked or 1
    return {"checked": result.checked, "chains": result.chains, "ok": result.ok, "workers": workers,
            "broken": None if result.ok else f"{result.chain}: {result.broken}",
            "seconds": seconds, "events_per_s": result.checked / seconds if seconds else None,
            "client_cpu_us_per_event": client / n * 1e6, "server_cpu_us_per_event": sum(seen.values()) / n * 1e6,
            "backends_seen": len(seen)}


def _rusage(resource) -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _proc_cpu(pid: int) -> float | None:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
