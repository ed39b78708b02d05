"""The compliance console (/compliance): who may use it, what the search finds (SQL
metacharacters are data), the flags, sampling, XLSX and PDF exports (logged in the security log),
the trail verification that catches a tampered event, and the definition diff. Runs on SQLite
and, with TEST_DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zlib
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text as sql

from tests.factories import create_people
from tests.tampering import superuser
from tests.web.helpers import DATA, act, as_user, csrf_token, open_tasks, start, text
from workflow_app.engine.runtime import Request
from workflow_app.engine.trail import verify_chain
from workflow_app.models import SecurityEvent, Substitution, TrailEvent, User
from workflow_app.services import compliance
from workflow_app.services.compliance import Criteria
from workflow_app.services.definitions import DefinitionStore

TRICKY = "100%_达标 \\ 'x' OR 1=1 --"


@pytest.fixture
def crowd(app, people) -> dict[str, int]:
    """The factory people plus a compliance reviewer and the audit administrator."""
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        more = create_people(s, {"auditor": [("audit", "compliance")], "auditadmin": []})
        s.get(User, more["auditadmin"]).admin_role = "audit"
    return {**people, **more}


def decide(app, people, iid: int, who: str = "promo1", opinion: str = "同意", action: str = "approve",
           target: str | None = None):
    [task] = open_tasks(app, iid)
    act(app, people, who, iid, Request("claim", task.id))
    return act(app, people, who, iid, Request(action, task.id, opinion=opinion, target=target))


def events(app, iid: int) -> list[TrailEvent]:
    with app.extensions["parkflow"].db.read() as s:
        return list(s.scalars(select(TrailEvent).where(TrailEvent.instance_id == iid).order_by(TrailEvent.seq)))


def find(app, criteria: Criteria) -> list[compliance.Decision]:
    with app.extensions["parkflow"].db.read() as s:
        return compliance.search(s, criteria).rows


def security_log(app, event: str) -> list[SecurityEvent]:
    with app.extensions["parkflow"].db.read() as s:
        return list(s.scalars(select(SecurityEvent).where(SecurityEvent.event == event).order_by(SecurityEvent.id)))


# ---------------------------------------------------------------- who may use it
def test_only_compliance_reviewers_and_the_audit_admin(app, crowd):
    iid = start(app, crowd)
    for name in ("promo1", "submitter", "sasac", "sysadmin"):
        client = as_user(app, name)
        for url in ("/compliance/", f"/compliance/instances/{iid}", f"/compliance/instances/{iid}/dossier.pdf",
                    "/compliance/export.xlsx", "/compliance/definitions/review/diff"):
            response = client.get(url)
            assert response.status_code == 403, (name, url)
            assert DATA["project_name"] not in text(response)
        assert client.post("/compliance/verify").status_code == 403
    assert not security_log(app, "export") and not security_log(app, "trail_verify")
    for name in ("auditor", "auditadmin"):
        page = as_user(app, name).get("/compliance/")
        assert page.status_code == 200 and "合规审查" in text(page)
        assert DATA["project_name"] in text(page)                 # the newest decisions by default
    assert as_user(app, "auditor").get("/compliance/instances/999999").status_code == 404


def test_the_header_link_is_offered_only_to_reviewers(app, crowd):
    """`compliance_console` (read by base.html's nav) follows the same rule as the pages."""
    from flask import render_template_string
    from flask_login import login_user

    from workflow_app.web.current import SignedIn
    for name, expected in (("auditor", True), ("auditadmin", True), ("promo1", False), ("sysadmin", False)):
        with app.extensions["parkflow"].db.read() as s:
            user = s.get(User, crowd[name])
            signed = SignedIn(user.id, user.username, user.display_name, user.admin_role,
                              tuple((m.department_code, m.role) for m in user.memberships), "sid", None, None)
        with app.test_request_context():
            login_user(signed)
            assert render_template_string("{{ compliance_console }}") == str(expected), name


# ---------------------------------------------------------------- search
def test_search_filters(app, crowd, clock):
    clock.now = datetime(2026, 3, 1, 17, 0, tzinfo=timezone.utc)   # 2026-03-02 01:00 in Shanghai
    first = start(app, crowd)
    decide(app, crowd, first, opinion=TRICKY)
    clock.now = datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc)
    second = start(app, crowd, name="haijiang", department="haijiang")
    decide(app, crowd, second, who="promo2", opinion="普通意见")

    def actions(**kw) -> list[tuple[int, str]]:
        return sorted((d.event.instance_id, d.event.action) for d in find(app, Criteria(**kw)))

    assert actions(action="approve") == [(first, "approve"), (second, "approve")]
    assert actions(person="promo2") == [(second, "approve"), (second, "claim")]
    assert actions(person=str(crowd["promo1"]), action="approve") == [(first, "approve")]
    assert actions(department="invest_promo", instance_id=second) == [(second, "approve"), (second, "claim")]
    assert actions(process_key="review", action="start") == [(first, "start"), (second, "start")]
    # Shanghai calendar days: the first application's events happened on 2 March there
    assert {i for i, _a in actions(date_from=date(2026, 3, 2), date_to=date(2026, 3, 2))} == {first}
    assert actions(date_to=date(2026, 3, 1)) == []
    assert {i for i, _a in actions(date_from=date(2026, 3, 3))} == {second}
    # LIKE metacharacters and SQL are data
    for needle in ("100%", "%_", "_达标", "\\", "'x' OR 1=1 --", TRICKY):
        assert actions(text=needle) == [(first, "approve")], needle
    for needle in ("%", "_"):                      # only the opinion that contains them literally
        assert actions(text=needle) == [(first, "approve")]
    assert actions(text="100%x") == [] and actions(person="%") == [] and actions(person="_") == []
    assert actions(text="普通") == [(second, "approve")]

    auditor = as_user(app, "auditor")
    page = auditor.get("/compliance/", query_string={"text": "'x' OR 1=1 --"})
    assert page.status_code == 200
    assert text(page).count('class="cx-opinion"') == 1
    assert "100%_达标" in text(page)
    assert auditor.get("/compliance/", query_string={"process_key": "review' OR '1'='1"}).status_code == 400
    for hostile in ({"instance": "99999999999"}, {"person": "99999999999"}, {"before": "9" * 30},
                    {"instance": "-1"}, {"date_from": "2026-02-30"}, {"sample": "100000"}):
        assert auditor.get("/compliance/", query_string=hostile).status_code in (200, 400), hostile
    assert auditor.get("/compliance/definitions/review/diff", query_string={"old": "9" * 30}).status_code == 404
    assert auditor.get("/compliance/", query_string={"date_from": "2026-03-05", "date_to": "2026-03-01"}).status_code == 400


def test_keyset_pages(app, crowd):
    for _ in range(3):
        decide(app, crowd, start(app, crowd))
    with app.extensions["parkflow"].db.read() as s:
        first = compliance.search(s, Criteria(), limit=4)
        second = compliance.search(s, Criteria(), before=first.next_before, limit=4)
        rest = compliance.search(s, Criteria(), before=second.next_before, limit=4)
    ids = [d.event.id for d in first.rows + second.rows + rest.rows]
    assert len(ids) == 9 and ids == sorted(ids, reverse=True) and rest.next_before is None
    page = text(as_user(app, "auditor").get("/compliance/"))
    assert "更多" not in page                          # 9 < 50


def test_late_decisions_returns_and_substitutions_are_flagged(app, crowd, clock):
    on_time = start(app, crowd)
    decide(app, crowd, on_time)
    late = start(app, crowd)
    [task] = open_tasks(app, late)
    assert task.due_at is not None
    clock.now = task.due_at + timedelta(days=3)
    decide(app, crowd, late, opinion="迟到的同意")
    returned = start(app, crowd)
    decide(app, crowd, returned, action="return", target="draft", opinion="请补充材料")
    substituted = start(app, crowd)
    with app.extensions["parkflow"].db.write() as s:
        s.add(Substitution(user_id=crowd["promo1"], substitute_id=crowd["econ"], reason="出差",
                           starts_at=clock.now - timedelta(days=1), ends_at=clock.now + timedelta(days=1)))
    [task] = open_tasks(app, substituted)
    act(app, crowd, "econ", substituted, Request("claim", task.id), on_behalf_of=crowd["promo1"])
    act(app, crowd, "econ", substituted, Request("approve", task.id, opinion="代为同意"),
        on_behalf_of=crowd["promo1"])

    flagged = find(app, Criteria(flags=frozenset({"late"})))
    assert [(d.event.instance_id, d.event.action) for d in flagged] == [(late, "approve")]
    assert flagged[0].late and flagged[0].flags == ["late"] and flagged[0].due_at < flagged[0].completed_at
    assert not any(d.late for d in find(app, Criteria(instance_id=on_time)))
    assert [d.event.action for d in find(app, Criteria(flags=frozenset({"return"})))] == ["return"]
    subs = find(app, Criteria(flags=frozenset({"substitute"})))
    assert {d.event.action for d in subs} == {"claim", "approve"}
    assert all(d.on_behalf_name == "promo1" and "substitute" in d.flags for d in subs)
    assert {d.event.instance_id for d in find(app, Criteria(person="promo1", flags=frozenset({"substitute"})))} == {substituted}
    both = find(app, Criteria(flags=frozenset({"late", "return"})))
    assert {d.event.instance_id for d in both} == {late, returned}

    auditor = as_user(app, "auditor")
    page = text(auditor.get("/compliance/", query_string={"flags": "late"}))
    assert "逾期办理" in page and "迟到的同意" in page and "请补充材料" not in page
    detail = text(auditor.get(f"/compliance/instances/{late}"))
    assert "逾期办理" in detail and "只读" in detail
    assert 'value="approve"' not in detail                        # read-only: no action panel


def test_sampling_is_reproducible(app, crowd):
    for _ in range(6):
        decide(app, crowd, start(app, crowd))
    with app.extensions["parkflow"].db.read() as s:
        one = compliance.sample(s, Criteria(), 5, seed=4711)
        again = compliance.sample(s, Criteria(), 5, seed=4711)
        other = compliance.sample(s, Criteria(), 5, seed=4712)
        approvals = compliance.sample(s, Criteria(action="approve"), 50, seed=1)
    ids = [d.event.id for d in one.rows]
    assert len(ids) == 5 and one.matched == 18 and ids == [d.event.id for d in again.rows]
    assert ids != [d.event.id for d in other.rows]
    assert len(approvals.rows) == 6 and {d.event.action for d in approvals.rows} == {"approve"}
    page = text(as_user(app, "auditor").get("/compliance/", query_string={"sample": 5}))
    seed = int(re.search(r"种子 (\d+)", page).group(1))
    with app.extensions["parkflow"].db.read() as s:
        redrawn = compliance.sample(s, Criteria(), 5, seed=seed)
    assert all(f"事件 {d.event.id} " in page for d in redrawn.rows)


# ---------------------------------------------------------------- exports
def test_xlsx_export(app, crowd):
    import openpyxl
    iid = start(app, crowd)
    decide(app, crowd, iid, opinion="=HYPERLINK(\"http://evil\",\"点我\")")
    other = start(app, crowd)
    decide(app, crowd, other, opinion="另一件")
    response = as_user(app, "auditor").get("/compliance/export.xlsx", query_string={"instance": iid})
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in response.headers["Content-Disposition"]
    # named by the local (Asia/Shanghai) time: the frozen clock's 01:00 UTC is 09:00 there
    assert "parkflow-decisions-202603020900.xlsx" in response.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    sheet = book["决策记录"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["事件编号", "申请编号", "申请标题"] and "审批意见" in header and "事件哈希" in header
    rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=2)]
    trail = events(app, iid)
    assert len(rows) == len(trail) == 3 and {r[1] for r in rows} == {iid}
    col = header.index
    assert [r[col("事件哈希")] for r in rows] == [e.hash for e in reversed(trail)]
    approve = next(r for r in rows if r[col("动作")] == "同意")
    assert approve[col("审批意见")] == "=HYPERLINK(\"http://evil\",\"点我\")"      # text, not a formula
    assert sheet.cell(row=rows.index(approve) + 2, column=col("审批意见") + 1).data_type == "s"
    assert approve[col("办理人")] == "promo1" and approve[col("部门")] == "区投资促进中心"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", approve[col("时间（北京时间）")])
    assert approve[col("时间（北京时间）")] == "2026-03-02 09:00:00"          # 01:00 UTC
    about = {r[0].value: r[1].value for r in book["查询条件"].iter_rows()}
    assert about["记录条数"] == "3" and about["申请编号"] == str(iid)
    [logged] = security_log(app, "export")
    assert logged.user_id == crowd["auditor"] and logged.details["kind"] == "decisions_xlsx"
    assert logged.details["rows"] == 3 and logged.details["criteria"] == {"instance_id": iid}


def _streams(pdf: bytes) -> list[bytes]:
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(match.group(1)))
        except zlib.error:
            out.append(match.group(1))
    return out


def test_pdf_dossier(app, crowd, tmp_path):
    from workflow_app.services.exports import cjk_font
    if cjk_font() is None:  # without one the dossier is refused: tests/security/test_pdf_fonts.py
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk)")
    iid = start(app, crowd)
    decide(app, crowd, iid, opinion="符合产业方向，同意")
    response = as_user(app, "auditor").get(f"/compliance/instances/{iid}/dossier.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pdf = response.data
    assert pdf.startswith(b"%PDF")
    trail = events(app, iid)
    # The chain rides along as an attached JSON file: every hash, and it verifies offline.
    attached = next(json.loads(s) for s in _streams(pdf) if s.lstrip().startswith(b'{\n "format"'))
    assert [e["hash"] for e in attached["events"]] == [e.hash for e in trail]
    assert verify_chain(attached["events"], attached["head"], attached["count"]) == (len(trail), None)
    # A CJK font is embedded (WeasyPrint names it after our @font-face family).
    assert any(b"ParkFlowCJK" in s for s in _streams(pdf) + [pdf])
    if shutil.which("pdftotext"):
        path = tmp_path / "dossier.pdf"
        path.write_bytes(pdf)
        printed = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                                 text=True, check=True).stdout
        for e in trail:
            assert e.hash in printed and e.prev_hash in printed
        assert "审批记录链核验通过" in printed and "符合产业方向，同意" in printed and DATA["project_name"] in printed
    [logged] = security_log(app, "export")
    assert logged.details["kind"] == "dossier_pdf" and logged.details["instance_id"] == iid
    assert logged.details["head"] == trail[-1].hash and logged.details["verified"] is True


# ---------------------------------------------------------------- verification
def test_verify_button_detects_a_tampered_event(make_app, crowd_csrf):
    app, people = crowd_csrf
    iid = start(app, people)
    decide(app, people, iid, opinion="同意")
    auditor = as_user(app, "auditor")
    token = csrf_token(text(auditor.get("/compliance/")))
    assert token
    assert auditor.post("/compliance/verify").status_code == 400                 # no CSRF token
    ok = auditor.post("/compliance/verify", data={"csrf_token": token})
    assert ok.status_code == 200 and "核验通过" in text(ok)
    approve = events(app, iid)[2]
    with superuser(app.extensions["parkflow"].db) as conn:
        conn.execute(sql("UPDATE trail_event SET opinion = '不同意' WHERE id = :id"), {"id": approve.id})
    bad = text(auditor.post("/compliance/verify", data={"csrf_token": token}))
    assert "核验未通过" in bad and f"事件编号 {approve.id}" in bad and "被修改" in bad
    assert f'href="/compliance/instances/{iid}"' in bad
    page = text(auditor.get(f"/compliance/instances/{iid}"))
    assert "本申请的审批记录链核验未通过" in page and "cx-event-broken" in page
    logged = security_log(app, "trail_verify")
    assert [e.outcome for e in logged] == ["ok", "error"] and logged[1].details["event_id"] == approve.id


@pytest.fixture
def crowd_csrf(make_app, clock):
    app = make_app(csrf=True)
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        from tests.factories import PEOPLE
        people = create_people(s, {**PEOPLE, "auditor": [("audit", "compliance")]})
    return app, people


# ---------------------------------------------------------------- definition versions
def test_definition_in_force_and_diff(app, crowd, web_defs, tmp_path, clock):
    iid = start(app, crowd)
    changed = tmp_path / "defs"
    shutil.copytree(web_defs, changed)
    source = (changed / "review.yaml").read_text(encoding="utf-8")
    (changed / "review.yaml").write_text(source.replace("deadline: {working_days: 5}",
                                                        "deadline: {working_days: 3}"), encoding="utf-8")
    with app.extensions["parkflow"].db.write() as s:
        DefinitionStore(changed).sync(s, clock())
    with app.extensions["parkflow"].db.read() as s:
        revs = compliance.revisions(s, "review")
        diff = compliance.definition_diff(s, "review", 1, 2)
        [started] = compliance.search(s, Criteria(instance_id=iid)).rows
    assert [r.revision for r in revs] == [1, 2]
    assert "-    deadline: {working_days: 5}" in diff.lines and "+    deadline: {working_days: 3}" in diff.lines
    assert started.revision == 1 and started.content_hash == revs[0].content_hash and not started.definition_mismatch
    page = text(as_user(app, "auditor").get("/compliance/definitions/review/diff"))
    assert 'class="cx-d-add">+    deadline: {working_days: 3}' in page and "r1" in page and "r2" in page
    assert as_user(app, "auditor").get("/compliance/definitions/review/diff?old=1&new=9").status_code == 404
    assert as_user(app, "auditor").get("/compliance/definitions/nope/diff").status_code == 404
