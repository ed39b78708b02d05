"""Refused decisions in the compliance console (`/compliance/refusals`): the engine's reason codes
(self_approval, recusal, same_decider) reach the security log and the reviewer's list,
filterable by reason; only reviewers see it."""
from __future__ import annotations

import pytest

from tests.engine.test_runtime_routing import routing, to_triage
from tests.web.helpers import as_user, open_tasks, start, text
from workflow_app.engine.errors import Forbidden
from workflow_app.models import User
from workflow_app.services import accounts


def test_the_engine_names_a_recusal():
    """(self_approval: tests/security/test_security_log.py, through the web)"""
    run = to_triage(routing())
    with pytest.raises(Forbidden) as recused:
        run.act(8, "approve", run.open()[0])
    assert recused.value.details["reason"] == "recusal"
    with pytest.raises(Forbidden) as claimed:
        run.act(8, "claim", run.open()[0])
    assert claimed.value.details["reason"] == "recusal"


def refuse_self_approval(app, people) -> int:
    iid = start(app, people, name="dual", department="zhentou")
    [task] = open_tasks(app, iid)
    dual = as_user(app, "dual")
    dual.post("/act-as", data={"department": "invest_promo", "role": "reviewer"})
    dual.post(f"/instances/{iid}/act", data={"task_id": task.id, "action": "approve", "opinion": "同意"})
    return iid


def test_reviewer_sees_refused_self_approvals_and_recusals(app, people, clock):
    iid = refuse_self_approval(app, people)
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:   # a recusal refused through the API, as web/__init__.log_refusal records it
        accounts.log(s, "action_refused", now=clock(), user=s.get(User, people["promo2"]), ip="10.0.0.7",
                     outcome="refused", reason="recusal", method="POST", path=f"/api/v1/instances/{iid}/actions")
    auditor = as_user(app, "auditor")
    page = auditor.get("/compliance/refusals")
    assert page.status_code == 200
    html = text(page)
    assert html.count('data-refusal="self_approval"') == 1 and html.count('data-refusal="recusal"') == 1
    assert f'/compliance/instances/{iid}"' in html and "dual" in html and "10.0.0.7" in html
    only = text(auditor.get("/compliance/refusals?reason=recusal"))
    assert 'data-refusal="recusal"' in only and 'data-refusal="self_approval"' not in only
    assert "回避与被拒绝的审批" in text(auditor.get("/compliance/"))


def test_only_reviewers_and_only_known_reasons(app, people):
    assert as_user(app, "promo1").get("/compliance/refusals").status_code == 403
    assert as_user(app, "auditor").get("/compliance/refusals?reason=nonsense").status_code == 400
