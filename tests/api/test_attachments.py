"""Attachments through the API: multipart start and action, the JSON listing, the download with
its visibility check, and typed values refused for attachment fields."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from config import TestConfig
from tests.api.conftest import bearer
from workflow_app import create_app

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"
WEB_FIXTURES = Path(__file__).resolve().parent.parent / "web" / "fixtures"


@pytest.fixture
def app(db, defs_dir, clock, tmp_path):
    for f in defs_dir.iterdir():
        shutil.copy(f, tmp_path)
    shutil.copy(WEB_FIXTURES / "quick_check.yaml", tmp_path)  # a process with attachment fields

    class Config(TestConfig):
        DATABASE_URL = db.url
        PROCESS_DEFS = str(tmp_path)

    app = create_app(Config)
    svc = app.extensions["parkflow"]
    svc.clock = svc.workflow.clock = clock
    yield app
    svc.db.dispose()


def _start(client, token, files, data=None):
    payload = {"process": "quick_check", "department": "zhentou", "data": {"subject": "API 核验", **(data or {})}}
    return client.post("/api/v1/instances/with-files", headers=bearer(token), content_type="multipart/form-data",
                       data={"payload": json.dumps(payload, ensure_ascii=False), **files})


def test_multipart_start_list_and_download(client, tokens):
    response = _start(client, tokens["submitter"], {"evidence": (io.BytesIO(PDF), "入驻材料.pdf")})
    assert response.status_code == 201, response.json
    body = response.json
    iid, sha = body["result"]["instance_id"], hashlib.sha256(PDF).hexdigest()
    assert body["instance"]["data"]["evidence"] == "sha256:" + sha
    start_event = body["instance"]["trail"][0]
    assert start_event["details"]["attachments"][0]["sha256"] == sha

    listing = client.get(f"/api/v1/instances/{iid}/attachments", headers=bearer(tokens["submitter"]))
    assert listing.status_code == 200
    [item] = listing.json["items"]
    assert (item["field"], item["filename"], item["size"], item["sha256"], item["trail_event_id"]) == \
        ("evidence", "入驻材料.pdf", len(PDF), sha, start_event["id"])

    got = client.get(item["download"], headers=bearer(tokens["submitter"]))
    assert got.status_code == 200 and got.data == PDF
    assert "filename*=UTF-8''%E5%85%A5%E9%A9%BB" in got.headers["Content-Disposition"]

    # No IDOR: another submitter and a department that has nothing to do with it get 404.
    for stranger in ("haijiang", "econ"):
        assert client.get(item["download"], headers=bearer(tokens[stranger])).status_code == 404
        assert client.get(f"/api/v1/instances/{iid}/attachments",
                          headers=bearer(tokens[stranger])).status_code == 404
    assert client.get(item["download"], headers=bearer(tokens["reviewer_c"])).status_code == 200  # compliance


def test_multipart_action_attaches_to_the_decision(client, tokens, people):
    iid = _start(client, tokens["submitter"], {}).json["result"]["instance_id"]
    detail = client.get(f"/api/v1/instances/{iid}", headers=bearer(tokens["promo1"])).json
    task = next(t for t in detail["tasks"] if t["assignee_id"] == people["promo1"] and t["status"] == "open")
    payload = {"action": "approve", "task_id": task["id"], "department": "invest_promo", "role": "reviewer"}
    response = client.post(f"/api/v1/instances/{iid}/actions/with-files", headers=bearer(tokens["promo1"]),
                           content_type="multipart/form-data",
                           data={"payload": json.dumps(payload), "check_report": (io.BytesIO(PDF), "report.pdf")})
    assert response.status_code == 200, response.json
    approve = response.json["instance"]["trail"][-1]
    assert approve["action"] == "approve" and approve["details"]["attachments"][0]["field"] == "check_report"


def test_refusals(client, tokens):
    wrong = _start(client, tokens["submitter"], {"evidence": (io.BytesIO(b"MZ"), "tool.exe")})
    assert wrong.status_code == 422 and wrong.json["details"]["fields"]["evidence"].startswith("file type not allowed")
    not_field = _start(client, tokens["submitter"], {"subject": (io.BytesIO(PDF), "a.pdf")})
    assert not_field.status_code == 422 and "subject" in not_field.json["details"]["fields"]
    typed = client.post("/api/v1/instances", headers=bearer(tokens["submitter"]), json={
        "process": "quick_check", "department": "zhentou",
        "data": {"subject": "x", "evidence": "sha256:" + "0" * 64}})
    assert typed.status_code == 422 and typed.json["details"]["fields"] == {"evidence": "upload a file for this field"}
    bad_payload = client.post("/api/v1/instances/with-files", headers=bearer(tokens["submitter"]),
                              content_type="multipart/form-data", data={"payload": "{not json"})
    assert bad_payload.status_code == 422
    assert client.post("/api/v1/instances/with-files", headers=bearer(tokens["submitter"]),
                       content_type="multipart/form-data", data={}).status_code == 422
