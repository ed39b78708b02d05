"""合规审查 is read-only: a compliance reviewer opens any application but is offered no comment or
抄送, and a posted comment / cc is refused on the pages and through the API alike."""
from __future__ import annotations

from sqlalchemy import func, select

from tests.factories import create_people
from tests.web.helpers import as_user, start, text
from workflow_app.models import CarbonCopy, TrailEvent
from workflow_app.services.tokens import create_token


def _reviewer(app, clock) -> int:
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        return create_people(s, {"compliance1": [("audit", "compliance")]})["compliance1"]


def _counts(app):
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        return (s.scalar(select(func.count()).select_from(TrailEvent)),
                s.scalar(select(func.count()).select_from(CarbonCopy)))


def test_compliance_reviewer_cannot_comment_or_copy(app, people, clock):
    _reviewer(app, clock)
    iid = start(app, people)
    client = as_user(app, "compliance1")
    page = text(client.get(f"/instances/{iid}"))
    assert page and 'value="comment"' not in page and 'value="cc"' not in page
    before = _counts(app)
    for data in ({"action": "comment", "opinion": "看一下"}, {"action": "cc", "users": [people["econ"]]}):
        response = client.post(f"/instances/{iid}/act", data=data,
                               headers={"Referer": f"http://localhost/instances/{iid}"})
        assert response.status_code == 302
        assert "合规审查与审计人员只能查阅申请" in text(client.get(response.headers["Location"]))
    assert _counts(app) == before
    # the submitter still may
    submitter_page = text(as_user(app, "submitter").get(f"/instances/{iid}"))
    assert 'value="comment"' in submitter_page and 'value="cc"' in submitter_page


def test_compliance_reviewer_cannot_comment_through_the_api(app, people, clock):
    uid = _reviewer(app, clock)
    iid = start(app, people)
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        token = create_token(s, uid, "script", 30, now=clock())
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/instances/{iid}", headers=headers).status_code == 200
    before = _counts(app)
    for body in ({"action": "comment", "opinion": "看一下"}, {"action": "cc", "users": [people["econ"]]}):
        response = client.post(f"/api/v1/instances/{iid}/actions", headers=headers, json=body)
        assert response.status_code == 403 and response.get_json()["error"] == "forbidden"
    assert _counts(app) == before
