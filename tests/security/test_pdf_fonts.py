"""The PDF dossier without a Chinese font: refused loudly (503, logged, the fix named) rather than
printed with every Chinese character as a blank box; or, when the operator chose the explicit
fallback (PDF_FONT_FALLBACK), printed with a warning at the top of the document."""
from __future__ import annotations

import pytest

from tests.security.conftest import add_crowd, security_events
from tests.web.helpers import as_user, open_tasks, start, text
from workflow_app.engine.runtime import Request
from workflow_app.services import exports


@pytest.fixture
def no_cjk_font(monkeypatch):
    monkeypatch.setattr(exports, "cjk_font", lambda bold=False: None)


def decided(app, people) -> int:
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.workflow.act(s, people["promo1"], iid, Request("claim", task.id))
        svc.workflow.act(s, people["promo1"], iid, Request("approve", task.id, opinion="同意"))
    return iid


def test_without_a_cjk_font_the_dossier_is_refused_loudly(app, people, no_cjk_font):
    iid = decided(app, people)
    response = as_user(app, "auditor").get(f"/compliance/instances/{iid}/dossier.pdf")
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "fonts-noto-cjk" in text(response)
    [logged] = security_events(app, "export")
    assert logged.outcome == "error" and logged.details["reason"] == "no_cjk_font"


def test_the_explicit_fallback_prints_a_warning_in_the_document(make_app, clock, no_cjk_font, monkeypatch):
    app = make_app(PDF_FONT_FALLBACK=True)
    people = add_crowd(app, clock())
    iid = decided(app, people)
    printed = {}
    real = exports.dossier_pdf

    def capture(html, **kw):
        printed["html"] = html
        return real(html, **kw)

    monkeypatch.setattr(exports, "dossier_pdf", capture)
    response = as_user(app, "auditor").get(f"/compliance/instances/{iid}/dossier.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert "WARNING: no CJK font" in printed["html"] and "fonts-noto-cjk" in printed["html"]
    [logged] = security_events(app, "export")
    assert logged.outcome == "ok" and logged.details["cjk_font"] is False
