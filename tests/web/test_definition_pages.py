"""流程定义 pages: versions, one definition (diagram, steps, YAML) and the file check."""
from __future__ import annotations

import shutil

from tests.factories import create_people
from tests.web.helpers import as_user, text
from workflow_app.models import User


def test_list_shows_versions(app, people):
    html = text(as_user(app, "econ").get("/definitions"))
    assert "测试评审" in html and "r1" in html and "最新" in html
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        _id, spec = svc.store.latest(s, "review")
    assert f"<code title=\"{spec.content_hash}\">{spec.content_hash[:12]}</code>" in html


def test_definition_page_has_diagram_steps_and_source(app, people):
    html = text(as_user(app, "econ").get("/definitions/review"))
    assert '<pre class="mermaid">flowchart TD' in html
    assert "s_assess -.-&gt;|&#34;退回&#34;| s_draft" in html       # return edges on the definition page
    assert "会签" in html and "单人（部门认领）" in html and "5 个工作日" in html
    assert "区投资促进中心 · 审核人" in html and "区发改局 · 审核人" in html
    assert "key: review" in html                                       # the YAML source
    assert as_user(app, "econ").get("/definitions/nope").status_code == 404


def test_shipped_definitions_render(make_app, clock):
    from pathlib import Path
    app = make_app(defs=Path(__file__).resolve().parents[2] / "process_defs")
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        results = svc.store.sync(s, clock())
        create_people(s)
    client = as_user(app, "econ")
    for r in results:
        response = client.get(f"/definitions/{r.key}")
        assert response.status_code == 200, r.key
    assert "2人通过" in text(client.get("/definitions/investment_review"))


def test_validation_view_lists_problems(make_app, defs_dir, tmp_path, clock):
    shutil.copy(defs_dir / "organisation.yaml", tmp_path)
    shutil.copy(defs_dir / "review.yaml", tmp_path)
    (tmp_path / "broken.yaml").write_text(
        "key: broken\nversion: '1'\ntitle: {zh: 坏的}\nsteps:\n"
        "  - {id: draft, type: start, title: {zh: 填报}}\n"
        "  - {id: done, type: end, title: {zh: 完成}, outcome: approved}\n"
        "transitions:\n  - {trigger: submit, source: draft, dest: nowhere}\n", encoding="utf-8")
    app = make_app(defs=tmp_path)
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        create_people(s)
    html = text(as_user(app, "econ").get("/definitions/validate"))
    assert "发现 1 个问题" in html
    assert "broken.yaml:8: transitions[0].dest:" in html and "unknown step" in html
    assert "测试评审" in html  # the valid file is listed as loadable
    # no server paths: neither the directory nor any file's absolute path
    assert str(tmp_path) not in html and str(tmp_path.resolve()) not in html


def test_definitions_are_for_members_and_the_system_administrator(app, people):
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        auditor = User(username="auditadmin", display_name="审计管理员",
                       password_hash=s.get(User, people["sysadmin"]).password_hash, admin_role="audit")
        s.add(auditor)
    assert as_user(app, "auditadmin").get("/definitions").status_code == 403
    assert as_user(app, "sysadmin").get("/definitions").status_code == 200
    assert as_user(app, "submitter").get("/definitions/validate").status_code == 200
