"""Scale-out: two app processes (gunicorn) on one PostgreSQL, with rate limits in the shared
Redis. Concurrent decisions on the same tasks arrive through both processes at once: exactly one
wins per task, the rest get a clear refusal, and the trail verifies.

No state lives in process memory that would let the two processes disagree: sessions and tokens
are database rows, compiled definitions are caches keyed by content hash, time is in `due_at`.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import create_people
from workflow_app.engine.calendar import WorkingCalendar
from workflow_app.models import Task
from workflow_app.services.definitions import DefinitionStore
from workflow_app.services.tokens import create_token
from workflow_app.services.trail import verify
from workflow_app.services.workflow import Workflow

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.postgres
TASKS = 12
DATA = {"project_name": "横向扩展测试", "investment_wan": "100", "industry": "新材料"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port: int, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture
def two_apps(db, defs_dir):
    if db.is_sqlite:
        pytest.skip("scale-out is a PostgreSQL deployment (this is the SQLite run)")
    env = {**os.environ, "DATABASE_URL": db.url, "PROCESS_DEFS": str(defs_dir),
           "PARKFLOW_CONFIG": "dev", "SECRET_KEY": "scale-out-test",
           "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")}
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "4", "-b", f"127.0.0.1:{port}",
         "workflow_app:create_app()"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for port in ports]
    try:
        deadline = time.monotonic() + 60
        for port, proc in zip(ports, procs):
            while True:
                if proc.poll() is not None:
                    pytest.fail("app process died: " + proc.stderr.read().decode()[-2000:])
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail("app process did not start listening")
                    time.sleep(0.2)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            proc.stderr.close()


def test_concurrent_decisions_through_two_processes(db, defs_dir, clock, two_apps):
    store = DefinitionStore(defs_dir)
    workflow = Workflow(store, WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars"))
    with db.write() as s:
        store.sync(s, clock())
        people = create_people(s)
        for _ in range(TASKS):
            workflow.start(s, people["submitter"], "review", DATA, department="zhentou")
        tokens = {name: create_token(s, people[name], "scale-out", 1, now=workflow.clock())
                  for name in ("promo1", "promo2")}
    with db.read() as s:
        tasks = [(t.instance_id, t.id) for t in s.scalars(select(Task).where(Task.status == "open"))]
    assert len(tasks) == TASKS

    results: dict[int, list[int]] = {task_id: [] for _iid, task_id in tasks}
    lock = threading.Lock()
    port_a, port_b = two_apps

    def decide(port: int, who: str, instance_id: int, task_id: int, barrier: threading.Barrier):
        barrier.wait()
        status, _body = call(port, f"/api/v1/instances/{instance_id}/actions", tokens[who],
                             {"action": "approve", "task_id": task_id})
        with lock:
            results[task_id].append(status)

    for instance_id, task_id in tasks:
        # Two colleagues of the same queue, and a double click of one of them, through both processes.
        attempts = [(port_a, "promo1"), (port_b, "promo2"), (port_b, "promo1"), (port_a, "promo2")]
        barrier = threading.Barrier(len(attempts))
        threads = [threading.Thread(target=decide, args=(port, who, instance_id, task_id, barrier))
                   for port, who in attempts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)

    for task_id, statuses in results.items():
        assert len(statuses) == 4
        assert statuses.count(200) == 1, (task_id, statuses)
        # The losers are told clearly: 409 (someone acted first) or 404 (the task went to a
        # colleague's queue claim and the application is no longer theirs to see).
        assert set(statuses) - {200} <= {409, 404}, (task_id, statuses)
    with db.read() as s:
        decided = s.scalars(select(Task).where(Task.id.in_(list(results)))).all()
        assert all(t.status == "done" and t.decision == "approve" for t in decided)
        result = verify(s)
    assert result.ok and result.checked >= TASKS * 2
