"""The JSON API under load: gunicorn (2 sync workers) on 127.0.0.1, an ephemeral port, the
PostgreSQL bench database; a Python client (threads, one keep-alive `http.client` connection
each) starts the instances with `POST /api/v1/instances` and approves with
`POST /api/v1/instances/{id}/actions`, breadth-first, each reviewer with their own bearer token
(created by `services.tokens.create_token`, acting in the step's department and role).

Bounded: at most N starts and 4 N approvals, and a time budget per phase. Loopback only. The
server is our own child process and is stopped by its pid when the case ends.
"""
from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

from .common import CHAIN, FORM, PROCESS_KEY, ROOT, SUBMIT_DEPARTMENT, WORK_DIR, Budget, People, percentile

ACTION_PATH = "/api/v1/instances/{id}/actions"


def readiness() -> str | None:
    """None if the API can be measured, else why not (the API is being written meanwhile)."""
    try:
        from workflow_app.services import tokens  # noqa: F401
        from workflow_app.services.tokens import create_token  # noqa: F401
        from workflow_app import create_app
        from config import TestConfig

        app = create_app(TestConfig)
        rules = {(r.rule, m) for r in app.url_map.iter_rules() for m in (r.methods or ())}
        if ("/api/v1/instances/<int:instance_id>/actions", "POST") not in rules:
            return "POST /api/v1/instances/{id}/actions is not registered yet"
        if ("/api/v1/instances", "POST") not in rules:
            return "POST /api/v1/instances is not registered yet"
        return None
    except Exception as exc:  # noqa: BLE001 - reported as "not yet measurable"
        return f"{type(exc).__name__}: {exc}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tokens(url: str, people: People) -> tuple[str, list[list[str]]]:
    from workflow_app.database import Database
    from workflow_app.services.tokens import create_token

    db = Database(url)
    try:
        with db.write() as s:
            submit = create_token(s, people.submitter, "bench", 1, SUBMIT_DEPARTMENT, "submitter")
            review = [[create_token(s, u, "bench", 1, dept, role) for u in people.reviewers[i]]
                      for i, (_step, dept, role) in enumerate(CHAIN)]
        return submit, review
    finally:
        db.dispose()


REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


def _empty_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


class Server:
    """gunicorn -w 2 on 127.0.0.1:<free port>, our own child; stopped by pid."""

    def __init__(self, url: str, defs: str, workers: int = 2):
        self.port = _free_port()
        # The production configuration, which refuses to start without a shared rate-limit store:
        # Redis database BENCH_REDIS_DB (default 15, emptied first, so no stale counters and no
        # keys shared with the test suite's database 0).
        redis_url = REDIS_URL
        _empty_redis(redis_url)
        env = dict(os.environ, DATABASE_URL=url, PROCESS_DEFS=defs, PARKFLOW_CONFIG="prod",
                   SECRET_KEY=secrets.token_hex(16), REDIS_URL=redis_url, PYTHONPATH=str(ROOT))
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = WORK_DIR / "gunicorn.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "--timeout", "60", "workflow_app:create_app()"],
            cwd=str(ROOT), env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, seconds: float = 60) -> None:
        budget = Budget(seconds)
        while not budget.expired():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}): {self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/openapi.json")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"gunicorn not ready in {seconds:.0f} s: {self.tail()}")

    def tail(self) -> str:
        try:
            return self.log_path.read_text()[-1500:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn stops its workers gracefully
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


def _cpu_of(pids: list[int]) -> float:
    from .throughput import _server_cpu

    return sum(_server_cpu(p) or 0.0 for p in pids)


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def _backends(url: str) -> list[int]:
    """PostgreSQL backend pids connected to the bench database (the gunicorn workers' pools)."""
    import psycopg

    with psycopg.connect(url) as conn:
        me = conn.info.backend_pid
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s "
            "AND backend_type = 'client backend'", (me,))]


def _drive(port: int, jobs: list, threads: int, budget_s: float, make_request) -> tuple[list, list, float, bool]:
    """Run `jobs` through `threads` keep-alive connections. Returns (answers, latencies,
    seconds, truncated); answers[i] is the decoded JSON (or an error string) for jobs[i]."""
    answers: list = [None] * len(jobs)
    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(range(len(jobs)))
    budget = Budget(budget_s)
    truncated = threading.Event()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                if budget.expired():
                    truncated.set()
                    return
                method, path, body, token = make_request(jobs[i])
                t = time.perf_counter()
                try:
                    conn.request(method, path, body=json.dumps(body),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    answers[i] = f"{type(exc).__name__}: {exc}"
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    continue
                elapsed = time.perf_counter() - t
                if resp.status in (200, 201):
                    answers[i] = json.loads(data)
                    with lock:
                        latencies.append(elapsed)
                else:
                    answers[i] = f"HTTP {resp.status}: {data[:300]!r}"
        finally:
            conn.close()

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout=budget_s + 120)
    return answers, latencies, time.perf_counter() - t0, truncated.is_set()


def run(url: str, people: People, defs: str, instances: int, budget_s: float, threads: int = 4) -> dict:
    submit_token, review_tokens = make_tokens(url, people)
    server = Server(url, defs)
    try:
        server.wait_ready()
        port = server.port
        # warm both workers (imports, compiled spec, statement caches) with complete instances
        warm, _lat, _s, _t = _drive(port, list(range(8)), 2, 60, lambda k: (
            "POST", "/api/v1/instances", {"process": PROCESS_KEY, "department": SUBMIT_DEPARTMENT,
                                          "data": {**FORM, "project_name": f"warm {k}"}}, submit_token))
        errors = [a for a in warm if not isinstance(a, dict)]
        if errors:
            raise RuntimeError(f"warm-up start failed: {errors[0]}")
        items = [(a["result"]["instance_id"], a["result"]["opened_task_ids"][0]) for a in warm]
        for step in range(len(CHAIN)):
            answers, _lat, _s, _t = _drive(port, [(i, t, step, k) for k, (i, t) in enumerate(items)], 2, 60,
                                           _act_request(review_tokens))
            errors = [a for a in answers if not isinstance(a, dict)]
            if errors:
                raise RuntimeError(f"warm-up approval failed: {errors[0]}")
            items = [(i, (a["result"]["opened_task_ids"] or [None])[0]) for (i, _t), a in zip(items, answers)]

        answers, start_lat, start_s, start_trunc = _drive(port, list(range(instances)), threads, budget_s, lambda k: (
            "POST", "/api/v1/instances", {"process": PROCESS_KEY, "department": SUBMIT_DEPARTMENT,
                                          "data": {**FORM, "project_name": f"{FORM['project_name']} {k}"}},
            submit_token))
        failures = [a for a in answers if isinstance(a, str)]
        items = [(a["result"]["instance_id"], a["result"]["opened_task_ids"][0])
                 for a in answers if isinstance(a, dict)]
        act_lat: list[float] = []
        act_s, act_trunc = 0.0, start_trunc
        workers, backends = _children(server.proc.pid), _backends(url)
        cpu0 = (_cpu_of(workers), _cpu_of(backends), time.process_time())
        for step in range(len(CHAIN)):
            if act_trunc:
                break
            answers, lat, secs, act_trunc = _drive(port, [(i, t, step, k) for k, (i, t) in enumerate(items)],
                                                   threads, max(budget_s - act_s, 1), _act_request(review_tokens))
            act_lat += lat
            act_s += secs
            failures += [a for a in answers if isinstance(a, str)]
            items = [(i, (a["result"]["opened_task_ids"] or [None])[0])
                     for (i, _t), a in zip(items, answers) if isinstance(a, dict)]
        cpu1 = (_cpu_of(workers), _cpu_of(backends), time.process_time())
        n_acts = len(act_lat) or 1
        start_lat.sort()
        act_lat.sort()
        return {"starts": len(start_lat), "start_seconds": start_s,
                "starts_per_s": len(start_lat) / start_s if start_s else None,
                "acts": len(act_lat), "act_seconds": act_s,
                "acts_per_s": len(act_lat) / act_s if act_s else None,
                "act_p50_ms": percentile(act_lat, 50) * 1000, "act_p99_ms": percentile(act_lat, 99) * 1000,
                "start_p50_ms": percentile(start_lat, 50) * 1000,
                "failures": len(failures), "first_failure": failures[0] if failures else None,
                "worker_cpu_us_per_act": (cpu1[0] - cpu0[0]) / n_acts * 1e6,
                "server_cpu_us_per_act": (cpu1[1] - cpu0[1]) / n_acts * 1e6,
                "load_client_cpu_us_per_act": (cpu1[2] - cpu0[2]) / n_acts * 1e6,
                "truncated": act_trunc, "client_threads": threads, "gunicorn_workers": 2,
                "instances": instances, "port": port,
                "limiter_storage": "redis"}
    finally:
        server.stop()


def _act_request(review_tokens: list[list[str]]):
    def make(job):
        iid, tid, step, k = job
        tokens = review_tokens[step]
        return ("POST", ACTION_PATH.format(id=iid), {"action": "approve", "task_id": tid}, tokens[k % len(tokens)])
    return make
