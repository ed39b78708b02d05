"""The clock through the JSON API: 补正 and the resubmission that restarts the clock, pause and
resume, 延期 with `days` (validated 1–365), granted only by a head of the task's department, and
the OpenAPI document describing `days` and `paused_at`."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.api.conftest import DATA, bearer
from tests.factories import create_people
from workflow_app.services.tokens import create_token


def start(client, token):
    return client.post("/api/v1/instances", headers=bearer(token),
                       json={"process": "review", "department": "zhentou", "data": DATA})


def act(client, token, iid, **body):
    return client.post(f"/api/v1/instances/{iid}/actions", headers=bearer(token), json=body)


def task_of(instance: dict, task_id: int) -> dict:
    return next(t for t in instance["tasks"] if t["id"] == task_id)


@pytest.fixture
def head_token(app, people, clock) -> str:
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        uid = create_people(s, {"promo_head": [("invest_promo", "head")]})["promo_head"]
        return create_token(s, uid, "head script", 30, now=clock())


@pytest.fixture
def claimed(client, tokens, clock) -> tuple[int, int]:
    clock.now = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # Monday 2 March 2026, 09:00 Beijing
    body = start(client, tokens["submitter"]).get_json()
    iid = body["result"]["instance_id"]
    [assess] = [t for t in body["instance"]["tasks"] if t["status"] == "open"]
    assert act(client, tokens["promo1"], iid, action="claim", task_id=assess["id"]).status_code == 200
    return iid, assess["id"]


def test_supplement_then_resubmission_through_the_api(client, tokens, claimed, clock):
    iid, tid = claimed
    assert act(client, tokens["promo1"], iid, action="supplement", task_id=tid).status_code == 422  # no list
    r = act(client, tokens["promo1"], iid, action="supplement", task_id=tid, opinion="缺：环评批复")
    assert r.status_code == 200
    inst = r.get_json()["instance"]
    paused = task_of(inst, tid)
    assert paused["paused_at"] and inst["trail"][-1]["action"] == "supplement"
    assert act(client, tokens["promo1"], iid, action="approve", task_id=tid).status_code == 409
    ask = next(t for t in inst["tasks"] if t["status"] == "open" and t["origin"] == "start")
    clock.now = datetime(2026, 3, 4, 1, 0, tzinfo=timezone.utc)
    r = act(client, tokens["submitter"], iid, action="submit", task_id=ask["id"], data=DATA)
    assert r.status_code == 200
    resumed = task_of(r.get_json()["instance"], tid)
    assert resumed["paused_at"] is None and resumed["due_at"] > paused["due_at"]


def test_pause_and_resume_through_the_api(client, tokens, claimed, clock):
    iid, tid = claimed
    assert act(client, tokens["promo1"], iid, action="pause", task_id=tid).status_code == 422  # no reason
    # a queue colleague sees the claimed task (so a lost claim race is a conflict, not a 404) but
    # may not stop its clock
    refused = act(client, tokens["promo2"], iid, action="pause", task_id=tid, opinion="x")
    assert refused.status_code == 403 and refused.get_json()["details"]["reason"] == "not_assignee"
    r = act(client, tokens["promo1"], iid, action="pause", task_id=tid, opinion="专家评审")
    assert r.status_code == 200 and task_of(r.get_json()["instance"], tid)["paused_at"]
    before = task_of(r.get_json()["instance"], tid)["due_at"]
    clock.now = datetime(2026, 3, 5, 1, 0, tzinfo=timezone.utc)
    r = act(client, tokens["promo1"], iid, action="resume", task_id=tid)
    assert r.status_code == 200
    inst = r.get_json()["instance"]
    assert task_of(inst, tid)["paused_at"] is None and task_of(inst, tid)["due_at"] > before
    assert inst["trail"][-1]["action"] == "resume" and inst["trail"][-1]["details"]["days"] == 3


def test_extension_days_are_validated_and_granted_by_the_head_only(client, tokens, head_token, claimed):
    iid, tid = claimed
    for days in (0, 366, "5", None):
        r = act(client, tokens["promo1"], iid, action="request_extension", task_id=tid, days=days, opinion="复杂")
        assert r.status_code == 422, days
    r = act(client, tokens["promo1"], iid, action="request_extension", task_id=tid, days=5, opinion="材料复杂")
    assert r.status_code == 200
    event = r.get_json()["instance"]["trail"][-1]
    assert (event["action"], event["details"]["days"]) == ("request_extension", 5)
    before = task_of(r.get_json()["instance"], tid)["due_at"]
    for who in ("promo1", "sasac"):  # the assignee; a head of another department
        assert act(client, tokens[who], iid, action="grant_extension", task_id=tid, days=5,
                   opinion="同意").status_code in (403, 404)
    r = act(client, head_token, iid, action="grant_extension", task_id=tid, days=5, opinion="同意延期")
    assert r.status_code == 200, r.get_json()
    inst = r.get_json()["instance"]
    assert inst["trail"][-1]["action"] == "grant_extension" and task_of(inst, tid)["due_at"] > before


def test_openapi_documents_days_and_paused_at(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    action_in = next(v for k, v in schemas.items() if k.startswith("ActionIn"))
    assert action_in["properties"]["days"]["minimum"] == 1 and action_in["properties"]["days"]["maximum"] == 365
    assert "grant_extension" in action_in["properties"]["action"]["description"]
    task_out = next(v for k, v in schemas.items() if k.startswith("TaskOut"))
    assert "paused_at" in task_out["properties"]


def test_the_coordinating_head_urges_through_the_api_once_per_interval(app, client, tokens, clock):
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        uid = create_people(s, {"econ_head": [("econ_it", "head")]})["econ_head"]
        token = create_token(s, uid, "head script", 30, now=clock())
    iid = start(client, tokens["submitter"]).get_json()["result"]["instance_id"]
    r = act(client, token, iid, action="urge", opinion="请尽快")
    assert r.status_code == 200 and r.get_json()["instance"]["trail"][-1]["action"] == "urge"
    again = act(client, token, iid, action="urge")
    assert again.status_code == 422 and "again" in again.get_json()["details"]
    assert act(client, tokens["econ"], iid, action="urge").status_code == 404  # a reviewer: not theirs
