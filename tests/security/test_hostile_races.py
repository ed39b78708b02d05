"""Races, crashes and replays: two decisions on one task at the same instant (PostgreSQL, threads
released by a Barrier), a process SIGKILLed while it holds the instance lock in the middle of an
action (all or nothing), replayed API requests (Idempotency-Key), and the security headers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.security.conftest import snapshot
from tests.web.helpers import act, as_user, open_tasks, start
from workflow_app.engine.errors import Conflict, Forbidden, InvalidAction
from workflow_app.engine.runtime import Request
from workflow_app.models import ProcessInstance, TrailEvent
from workflow_app.services.tokens import create_token

ROOT = Path(__file__).resolve().parents[2]


def test_concurrent_double_decisions_on_postgresql(app, people):
    svc = app.extensions["parkflow"]
    if svc.db.is_sqlite:
        pytest.skip("row locks under concurrency: PostgreSQL (SQLite serialises writers with BEGIN IMMEDIATE)")
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    act(app, people, "promo1", iid, Request("claim", task.id))
    before = snapshot(app)
    barrier, outcomes = threading.Barrier(4), []

    def decide(action: str):
        barrier.wait()
        try:
            with svc.db.write() as s:
                svc.workflow.act(s, people["promo1"], iid, Request(action, task.id, opinion=action))
            outcomes.append("ok")
        except (Conflict, Forbidden, InvalidAction) as err:
            outcomes.append(type(err).__name__)

    threads = [threading.Thread(target=decide, args=(a,)) for a in ("approve", "reject", "approve", "return")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("ok") == 1 and len(outcomes) == 4, outcomes
    after = snapshot(app)
    assert after["trail"] == before["trail"] + 1 and after["versions"] == before["versions"] + 1


CRASHER = textwrap.dedent("""
    import sys, time
    from sqlalchemy import text
    from config import TestConfig
    from workflow_app import create_app
    from workflow_app.engine.runtime import Request

    url, iid, user, task = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    class Config(TestConfig):
        DATABASE_URL = url
        PROCESS_DEFS = sys.argv[5]

    svc = create_app(Config).extensions["parkflow"]
    with svc.db.write() as s:
        # the transaction is ours: take the instance lock with raw SQL, run the whole action in it,
        # then stop before COMMIT and wait to be killed
        lock = "" if svc.db.is_sqlite else " FOR UPDATE"
        s.execute(text("SELECT id FROM process_instance WHERE id = :i" + lock), {"i": iid})
        svc.workflow.act(s, user, iid, Request("approve", task, opinion="killed mid-way"))
        s.flush()
        print("HOLDING", flush=True)
        time.sleep(600)
""")


def test_process_killed_in_the_middle_of_an_action_leaves_all_or_nothing(app, people, sec_defs):
    svc = app.extensions["parkflow"]
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    act(app, people, "promo1", iid, Request("claim", task.id))
    before = snapshot(app)
    with subprocess.Popen([sys.executable, "-c", CRASHER, svc.db.url, str(iid), str(people["promo1"]),
                           str(task.id), str(sec_defs)], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}) as proc:
        try:
            line = proc.stdout.readline()
            assert line.strip() == "HOLDING", proc.stderr.read()
            proc.send_signal(signal.SIGKILL)                         # inside the open transaction
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == -signal.SIGKILL
    svc.db.dispose()
    assert snapshot(app) == before                                 # nothing of the action is there
    result = act(app, people, "promo1", iid, Request("approve", task.id, opinion="同意"))  # lock released
    assert result.current_step != "assess"
    with svc.db.read() as s:
        opinions = s.scalars(select(TrailEvent.opinion).where(TrailEvent.instance_id == iid)).all()
        assert "killed mid-way" not in opinions and s.get(ProcessInstance, iid).version == 3


@pytest.fixture
def api_token(app, people):
    with app.extensions["parkflow"].db.write() as s:
        return create_token(s, people["promo1"], "script", 30, now=app.extensions["parkflow"].clock())


def test_replayed_api_request_writes_nothing(app, people, api_token):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {api_token}", "Idempotency-Key": "claim-1"}
    body = {"action": "claim", "task_id": task.id}
    first = client.post(f"/api/v1/instances/{iid}/actions", headers=headers, json=body)
    assert first.status_code == 200 and first.get_json()["result"]["replayed"] is False
    before = snapshot(app)
    for _ in range(3):
        again = client.post(f"/api/v1/instances/{iid}/actions", headers=headers, json=body)
        assert again.status_code == 200 and again.get_json()["result"]["replayed"] is True
        assert again.headers["Idempotent-Replayed"] == "true"
    assert snapshot(app) == before
    reused = client.post(f"/api/v1/instances/{iid}/actions", headers=headers,
                         json={"action": "approve", "task_id": task.id, "opinion": "同意"})
    assert reused.status_code == 422 and reused.get_json()["details"]["reason"] == "idempotency_key_reused"
    assert snapshot(app) == before


@pytest.mark.parametrize("url", ["/login", "/", "/instances/999999", "/security/", "/api/v1/me",
                                 "/static/css/app.css"])
def test_security_headers_everywhere(app, people, url):
    client = as_user(app, "promo1")
    response = client.get(url)
    csp = response.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-eval" not in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert response.headers.get("Referrer-Policy") == "same-origin"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert "Server" not in response.headers and "X-Powered-By" not in response.headers
    if not url.startswith("/static/"):  # 剩余信息保护: pages are not kept in shared caches
        assert "no-store" in response.headers.get("Cache-Control", "")
    response.close()


def test_session_cookie_flags(make_app, clock):
    from tests.security.conftest import add_crowd
    app = make_app(SESSION_COOKIE_SECURE=True)
    add_crowd(app, clock())
    client = app.test_client()
    response = client.post("/login", data={"username": "promo1", "password": "Parkflow#2026"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
