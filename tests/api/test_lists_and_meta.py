"""Keyset pagination of the lists, /me, /definitions, and who may verify the trail."""
from __future__ import annotations

from sqlalchemy import update

from tests.api.conftest import DATA, bearer
from tests.tampering import superuser
from workflow_app.models import TrailEvent


def start_many(client, token, n: int) -> list[int]:
    ids = []
    for i in range(n):
        r = client.post("/api/v1/instances", headers=bearer(token),
                        json={"process": "review", "department": "zhentou",
                              "data": {**DATA, "project_name": f"项目{i}"}})
        assert r.status_code == 201
        ids.append(r.get_json()["result"]["instance_id"])
    return ids


def walk(client, token, path: str, limit: int, key: str) -> tuple[list[int], int]:
    seen, pages, url = [], 0, f"{path}?limit={limit}"
    while True:
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        pages += 1
        seen += [item[key] for item in body["items"]]
        if body["next_before_id"] is None:
            return seen, pages
        url = f"{path}?limit={limit}&before_id={body['next_before_id']}"


def test_keyset_pages_cover_everything_once_newest_first(client, tokens):
    ids = start_many(client, tokens["submitter"], 5)
    seen, pages = walk(client, tokens["submitter"], "/api/v1/instances", 2, "instance_id")
    assert seen == sorted(ids, reverse=True) and pages == 3
    queued, _ = walk(client, tokens["promo1"], "/api/v1/queue", 2, "task_id")
    assert len(queued) == 5 and queued == sorted(queued, reverse=True)
    hit = client.get("/api/v1/queue?q=项目3", headers=bearer(tokens["promo1"])).get_json()["items"]
    assert [i["title"] for i in hit] == ["项目3"]


def test_cc_list(client, tokens, people):
    [iid] = start_many(client, tokens["submitter"], 1)
    r = client.post(f"/api/v1/instances/{iid}/actions", headers=bearer(tokens["submitter"]),
                    json={"action": "cc", "users": [people["haijiang"]], "opinion": "请知悉"})
    assert r.status_code == 200
    copied = client.get("/api/v1/instances?cc=1&mine=0", headers=bearer(tokens["haijiang"])).get_json()
    assert [i["instance_id"] for i in copied["items"]] == [iid]
    assert client.get(f"/api/v1/instances/{iid}", headers=bearer(tokens["haijiang"])).status_code == 200
    both = client.get("/api/v1/instances?cc=1", headers=bearer(tokens["haijiang"]))
    assert both.status_code == 422


def test_definitions(client, tokens):
    items = client.get("/api/v1/definitions", headers=bearer(tokens["econ"])).get_json()["items"]
    [review] = [d for d in items if d["key"] == "review"]
    assert review["revision"] == 1 and review["version"] == "1" and review["latest"] is True
    assert len(review["hash"]) == 64


def test_trail_verify_is_for_compliance_and_audit_only(app, client, tokens):
    start_many(client, tokens["submitter"], 2)
    for name in ("submitter", "sasac", "sysadmin"):
        r = client.post("/api/v1/trail/verify", headers=bearer(tokens[name]))
        assert r.status_code == 403 and r.get_json()["error"] == "forbidden"
    for name in ("reviewer_c", "auditor"):
        r = client.post("/api/v1/trail/verify", headers=bearer(tokens[name]))
        assert r.status_code == 200
        body = r.get_json()
        # two instance chains of one event each, plus the system chain (definition syncs)
        assert body["ok"] is True and body["broken"] is None and body["chains"] == 3
        assert body["checked"] >= 3


def test_trail_verify_reports_the_first_break(app, client, tokens):
    [iid, _] = start_many(client, tokens["submitter"], 2)
    with superuser(app.extensions["parkflow"].db) as conn:
        conn.execute(update(TrailEvent).where(TrailEvent.instance_id == iid).values(opinion="改过"))
    body = client.post("/api/v1/trail/verify", headers=bearer(tokens["auditor"])).get_json()
    assert body["ok"] is False
    assert body["broken"]["seq"] == 1 and body["broken"]["chain"] == f"instance {iid}"
    assert body["broken"]["event_id"] and body["broken"]["reason"]
