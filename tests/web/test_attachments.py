"""Attachments: files uploaded with the start form and with a decision, stored in the database in
the action's transaction, listed on the page with their sha256 (which the trail event records),
downloadable only by people who may see the application, limits from the config."""
from __future__ import annotations

import hashlib
import io
from urllib.parse import quote

from sqlalchemy import select

from tests.web.helpers import as_user, open_tasks, text
from workflow_app.models import Attachment, ProcessInstance, TrailEvent

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
NAME = "招宝山二期 核验材料.pdf"


def _start(client, *, name=NAME, content=PDF, **extra):
    data = {"department": "zhentou", "f-subject": "入驻资料核验", **extra}
    if content is not None:
        data["f-evidence"] = (io.BytesIO(content), name)
    return client.post("/processes/quick_check/start", data=data, content_type="multipart/form-data")


def _rows(app):
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        return [(a.instance_id, a.field, a.filename, a.size, a.sha256, a.media_type, a.trail_event_id)
                for a in s.scalars(select(Attachment).order_by(Attachment.id))]


def _event(app, event_id):
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        e = s.get(TrailEvent, event_id)
        return e.action, e.details


def test_start_with_a_file_stores_it_with_the_start_event(app, people):
    client = as_user(app, "submitter")
    response = _start(client)
    assert response.status_code == 302, text(response)
    iid = int(response.headers["Location"].rsplit("/", 1)[1])
    sha = hashlib.sha256(PDF).hexdigest()
    [(instance_id, field, filename, size, digest, media, event_id)] = _rows(app)
    assert (instance_id, field, filename, size, digest, media) == (iid, "evidence", NAME, len(PDF), sha,
                                                                  "application/pdf")
    action, details = _event(app, event_id)
    assert action == "start"
    assert details["attachments"] == [{"field": "evidence", "filename": NAME, "size": len(PDF),
                                       "media_type": "application/pdf", "sha256": sha}]
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        assert s.get(ProcessInstance, iid).form_data["evidence"] == "sha256:" + sha  # the form hash covers it
    page = text(client.get(f"/instances/{iid}"))
    assert NAME in page and sha in page and "附件" in page

    download = client.get(f"/attachments/{_first_id(app)}")
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"filename*=UTF-8''{quote(NAME)}" in disposition
    assert "\n" not in disposition and "招" not in disposition  # only ASCII in the header


def _first_id(app) -> int:
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        return s.scalars(select(Attachment.id).order_by(Attachment.id)).first()


def test_someone_who_may_not_see_the_application_gets_404(app, people):
    assert _start(as_user(app, "submitter")).status_code == 302
    aid = _first_id(app)
    assert as_user(app, "econ").get(f"/attachments/{aid}").status_code == 404       # another department
    assert as_user(app, "haijiang").get(f"/attachments/{aid}").status_code == 404   # another submitter
    assert as_user(app, "haijiang").get(f"/attachments/{aid}?via=1").status_code == 404
    assert as_user(app, "promo1").get(f"/attachments/{aid}").status_code == 200     # the queue may
    assert app.test_client().get(f"/attachments/{aid}").status_code in (302, 401)  # signed out


def test_type_size_and_content_are_checked(make_app, people, app):
    client = as_user(app, "submitter")
    bad = _start(client, name="setup.exe", content=b"MZ\x90\x00")
    assert bad.status_code == 422 and "不允许的文件类型" in text(bad)
    fake = _start(client, name="方案.pdf", content=b"<html>not a pdf</html>")
    assert fake.status_code == 422 and "文件内容与扩展名 .pdf 不符" in text(fake)
    app.config["ATTACHMENT_MAX_BYTES"] = 2048
    big = _start(client, content=PDF + b"0" * 2048)
    assert big.status_code == 422 and "文件不能大于 2 KB" in text(big)
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        assert s.query(ProcessInstance).count() == 0
    assert _rows(app) == []


def test_a_reviewer_attaches_a_report_with_the_approval(app, people):
    response = _start(as_user(app, "submitter"), content=None)
    iid = int(response.headers["Location"].rsplit("/", 1)[1])
    task = next(t for t in open_tasks(app, iid) if t.assignee_id == people["promo1"])
    promo1 = as_user(app, "promo1")
    report = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    done = promo1.post(f"/instances/{iid}/act", content_type="multipart/form-data", data={
        "action": "approve", "task_id": task.id, "f-check_report": (io.BytesIO(report), "核验报告.png")},
        headers={"Referer": f"http://localhost/instances/{iid}"})
    assert done.status_code == 302
    [row] = _rows(app)
    assert row[1] == "check_report" and row[5] == "image/png"
    assert _event(app, row[6])[0] == "approve"
    assert _event(app, row[6])[1]["attachments"][0]["sha256"] == hashlib.sha256(report).hexdigest()


def test_a_refused_action_stores_no_file(app, people):
    response = _start(as_user(app, "submitter"), content=None)
    iid = int(response.headers["Location"].rsplit("/", 1)[1])
    tasks = {t.assignee_id: t.id for t in open_tasks(app, iid)}
    promo1, promo2 = as_user(app, "promo1"), as_user(app, "promo2")
    assert promo1.post(f"/instances/{iid}/act", data={"action": "approve",
                                                      "task_id": tasks[people["promo1"]]}).status_code == 302
    late = promo2.post(f"/instances/{iid}/act", content_type="multipart/form-data", data={
        "action": "approve", "task_id": tasks[people["promo2"]],
        "f-check_report": (io.BytesIO(PDF), "late.pdf")},
        headers={"Referer": f"http://localhost/instances/{iid}"})
    assert late.status_code == 302
    assert _rows(app) == []  # the action failed: its file was not stored either


def test_the_form_says_what_may_be_uploaded(app, people):
    html = text(as_user(app, "submitter").get("/processes/quick_check/start"))
    assert 'enctype="multipart/form-data"' in html and 'type="file"' in html and 'name="f-evidence"' in html
    assert 'accept=".pdf,.ofd,.docx' in html and "附件：每个文件不超过 20 MB" in html


def test_a_sub_process_shows_the_file_its_parent_passed_on(make_app, web_defs, tmp_path, clock):
    """parent → child with `inputs: {doc: doc}`: the child's reviewer (who cannot see the parent)
    downloads the parent's file through the child, and only through it."""
    import re as _re
    import shutil

    from tests.factories import PEOPLE, create_people
    from tests.web.helpers import act as service_act
    from workflow_app.engine.runtime import Request
    for f in web_defs.iterdir():
        shutil.copy(f, tmp_path)
    doc = "  - {name: doc, type: attachment, label: {zh: 材料}}\n"
    parent = (tmp_path / "parent.yaml").read_text(encoding="utf-8")
    parent = parent.replace("steps:\n", doc + "steps:\n", 1).replace(
        "inputs: {title: name, amount_wan: amount}", "inputs: {title: name, amount_wan: amount, doc: doc}")
    (tmp_path / "parent.yaml").write_text(parent, encoding="utf-8")
    child = (tmp_path / "child.yaml").read_text(encoding="utf-8").replace("steps:\n", doc + "steps:\n", 1)
    (tmp_path / "child.yaml").write_text(child, encoding="utf-8")
    app = make_app(defs=tmp_path)
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        people = create_people(s, PEOPLE)

    started = as_user(app, "submitter").post("/processes/parent/start", content_type="multipart/form-data", data={
        "department": "zhentou", "f-name": "母流程", "f-amount": "10", "f-doc": (io.BytesIO(PDF), "母流程材料.pdf")})
    assert started.status_code == 302, text(started)
    pid = int(started.headers["Location"].rsplit("/", 1)[1])
    [task] = open_tasks(app, pid)
    service_act(app, people, "promo1", pid, Request("claim", task.id))
    service_act(app, people, "promo1", pid, Request("approve", task.id))
    with svc.db.read() as s:
        cid = s.scalar(select(ProcessInstance.id).where(ProcessInstance.parent_id == pid))
    aid = _first_id(app)
    econ = as_user(app, "econ")
    assert econ.get(f"/instances/{pid}").status_code == 404
    page = text(econ.get(f"/instances/{cid}"))
    assert "母流程材料.pdf" in page
    link = _re.search(r'href="(/attachments/\d+\?via=\d+)"', page).group(1)
    assert link == f"/attachments/{aid}?via={cid}"
    assert econ.get(link).data == PDF
    assert econ.get(f"/attachments/{aid}").status_code == 404           # not without the child
    assert as_user(app, "haijiang").get(link).status_code == 404        # nor for a stranger


def test_a_request_over_the_server_limit_is_refused_clearly(app, people):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    client = as_user(app, "submitter")
    response = _start(client, content=PDF + b"0" * 8192)
    assert response.status_code == 302
    assert "上传的文件过大" in text(client.get(response.headers["Location"]))
    from workflow_app.services.tokens import create_token
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        token = create_token(s, people["submitter"], "script", 30, now=svc.clock())
    api = app.test_client().post("/api/v1/instances/with-files", content_type="multipart/form-data",
                                 headers={"Authorization": f"Bearer {token}"},
                                 data={"payload": "{}", "evidence": (io.BytesIO(PDF + b"0" * 8192), "a.pdf")})
    assert api.status_code == 413 and api.get_json()["error"] == "too_large"
    assert _rows(app) == []
