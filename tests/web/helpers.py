"""Helpers for the page tests: sign in (CSRF-aware), start and act through the service."""
from __future__ import annotations

import re

from workflow_app.engine.runtime import Request
from workflow_app.models import Task

PASSWORD = "Parkflow#2026"
DATA = {"project_name": "新材料中试基地", "investment_wan": "6000", "industry": "新材料"}


def login(client, username: str, password: str = PASSWORD):
    """Sign in (CSRF-aware: takes the token from the login form when the app checks it)."""
    page = client.get("/login")
    token = csrf_token(page.get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password,
                                           **({"csrf_token": token} if token else {})})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def csrf_token(html: str) -> str | None:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    return match.group(1) if match else None


def as_user(app, name: str):
    client = app.test_client()
    login(client, name)
    return client


def start(app, people, name: str = "submitter", key: str = "review", data: dict | None = None,
          department: str = "zhentou") -> int:
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        return svc.workflow.start(s, people[name], key, dict(data or DATA), department=department).instance_id


def act(app, people, name: str, instance_id: int, request: Request, **kw):
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        return svc.workflow.act(s, people[name], instance_id, request, **kw)


def open_tasks(app, instance_id: int) -> list[Task]:
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        return list(s.query(Task).filter_by(instance_id=instance_id, status="open").order_by(Task.id))


def text(response) -> str:
    return response.get_data(as_text=True)
