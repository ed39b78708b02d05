"""The inbox endpoints' filters: process, step, department, due state, date range (and the
OpenAPI document lists them)."""
from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import DATA, bearer


def _start(client, token, name):
    r = client.post("/api/v1/instances", headers=bearer(token),
                    json={"process": "review", "department": "zhentou", "data": {**DATA, "project_name": name}})
    assert r.status_code == 201
    return r.get_json()["result"]["instance_id"]


def _names(client, token, path, **query):
    r = client.get(path, headers=bearer(token), query_string=query)
    assert r.status_code == 200, r.get_json()
    return [i["title"] for i in r.get_json()["items"]]


def test_queue_and_started_filters(client, tokens, clock):
    _start(client, tokens["submitter"], "早的项目")
    clock.now += timedelta(days=10)   # the first one's 5 working days have passed
    _start(client, tokens["submitter"], "新的项目")
    promo = tokens["promo1"]
    assert _names(client, promo, "/api/v1/queue") == ["新的项目", "早的项目"]
    assert _names(client, promo, "/api/v1/queue", process="review", step="assess",
                  department="invest_promo") == ["新的项目", "早的项目"]
    assert _names(client, promo, "/api/v1/queue", step="joint") == []
    assert _names(client, promo, "/api/v1/queue", department="econ_it") == []
    assert _names(client, promo, "/api/v1/queue", process="modes") == []
    assert _names(client, promo, "/api/v1/queue", due="overdue") == ["早的项目"]
    assert _names(client, promo, "/api/v1/queue", due="soon") == []
    today = (clock.now + timedelta(hours=8)).date()
    assert _names(client, promo, "/api/v1/queue", since=today.isoformat()) == ["新的项目"]
    assert _names(client, promo, "/api/v1/queue", until=(today - timedelta(days=1)).isoformat()) == ["早的项目"]
    assert _names(client, tokens["submitter"], "/api/v1/instances", due="overdue") == ["早的项目"]
    assert _names(client, tokens["submitter"], "/api/v1/instances", q="新的") == ["新的项目"]
    bad = client.get("/api/v1/queue", headers=bearer(promo), query_string={"due": "later", "since": "x"})
    assert bad.status_code == 422 and set(bad.get_json()["details"]["query"]) == {"due", "since"}


def test_openapi_documents_the_filters(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/tasks", "/api/v1/queue", "/api/v1/tasks/done", "/api/v1/instances"):
        names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert {"process", "step", "department", "due", "since", "until", "q"} <= names, path
