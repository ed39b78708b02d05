"""Hostile requests to the pages and the API. Every case asserts a clear refusal AND that nothing
was written (`snapshot`: trail events, instances, tasks, the security log, accounts ...).

- CSRF missing or wrong on every POST form;
- IDOR: every id-bearing route, as someone who may not see the thing → 404 (or the console's
  403 for every id alike), and nothing of it in the answer;
- role probes: each role tries what it must not;
- oversized and malformed form fields, numbers, units and dates; NUL bytes;
- HTML/script in an opinion is shown inert; SQL metacharacters in searches are data.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.security.conftest import add_crowd, snapshot
from tests.web.helpers import DATA, act, as_user, csrf_token, login, open_tasks, start, text
from workflow_app.engine.runtime import Request
from workflow_app.models import ProcessInstance, Substitution, User
from workflow_app.services.tokens import create_token

SECRET = DATA["project_name"]


# ---------------------------------------------------------------- CSRF
POST_FORMS = [  # (who signs in, url; {iid} {tid} {uid} {sid} are filled in)
    ("promo1", "/logout"), ("sasac_xingyu", "/act-as"), ("promo1", "/locale/en"),
    ("promo1", "/password"), ("promo1", "/instances/{iid}/act"), ("promo1", "/inbox/bulk-approve"),
    ("submitter", "/processes/review/start"), ("auditor", "/compliance/verify"),
    ("promo1", "/security/sessions/end"), ("promo1", "/security/totp"), ("promo1", "/security/totp/remove"),
    ("promo1", "/security/substitutions"), ("promo1", "/security/substitutions/{sid}/end"),
    ("sysadmin", "/security/users"), ("sysadmin", "/security/users/{uid}/active"),
    ("sysadmin", "/security/users/{uid}/reset-password"), ("secadmin", "/security/access/{uid}/memberships"),
    ("secadmin", "/security/access/{uid}/unlock"), ("secadmin", "/security/access/{uid}/second-factor"),
    ("secadmin", "/security/policy"), ("promo1", "/login/code"),
]


@pytest.fixture
def guarded(make_app, clock):
    """An app that checks CSRF, with one running application and one stand-in."""
    app = make_app(csrf=True)
    people = add_crowd(app, clock())
    iid = start(app, people)
    with app.extensions["parkflow"].db.write() as s:
        sub = Substitution(user_id=people["promo1"], substitute_id=people["promo2"], starts_at=clock(),
                           ends_at=clock().replace(year=2027), reason="出差")
        s.add(sub)
        s.flush()
        sid = sub.id
    return app, people, iid, sid


@pytest.mark.parametrize("token", ["missing", "wrong"])
@pytest.mark.parametrize("who,url", POST_FORMS, ids=[u for _w, u in POST_FORMS])
def test_csrf_missing_or_wrong_is_refused(guarded, who, url, token):
    app, people, iid, sid = guarded
    client = app.test_client()
    login(client, who)
    if url == "/login/code":
        client = app.test_client()  # the second step: half signed in
        with client.session_transaction() as sess:
            sess["login_pending"] = {"uid": people["auditor"], "at": app.extensions["parkflow"].clock().timestamp()}
    [task] = open_tasks(app, iid)
    target = url.format(iid=iid, tid=task.id, uid=people["econ"], sid=sid)
    data = {"action": "claim", "task_id": task.id, "department": "xingyu", "role": "reviewer", "handle": "x" * 12,
            "code": "123456", "substitute": "promo2", "username": "newbie", "display_name": "新人",
            "memberships": "econ_it/reviewer", "active": "0", "current": "x", "new": "x", "confirm": "x",
            "task_ids": task.id, "max_failures": 3}
    if token == "wrong":
        data["csrf_token"] = "IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAi.aaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbb"
    before = snapshot(app)
    response = client.post(target, data=data)
    assert response.status_code == 400, (url, response.status_code)
    assert "请求已失效" in text(response)
    assert snapshot(app) == before


def test_every_security_form_carries_a_csrf_token(guarded):
    app, _people, _iid, _sid = guarded
    pages = {"promo1": ["/security/", "/security/sessions", "/security/totp", "/security/substitutions"],
             "sysadmin": ["/security/users"], "secadmin": ["/security/access", "/security/policy"]}
    import re
    for who, urls in pages.items():
        client = app.test_client()
        login(client, who)
        for url in urls:
            html = text(client.get(url))
            for form in re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.S):
                if 'method="post"' in form:
                    assert 'name="csrf_token"' in form, (url, form[:200])


# ---------------------------------------------------------------- IDOR
@pytest.fixture
def stranger_case(app, people):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    with app.extensions["parkflow"].db.write() as s:
        token = create_token(s, people["plan1"], "probe", 30, now=app.extensions["parkflow"].clock())
    return iid, task.id, token


IDOR = [
    ("GET", "/instances/{iid}", 404), ("POST", "/instances/{iid}/act", 404),
    ("GET", "/instances/{missing}", 404), ("POST", "/instances/{missing}/act", 404),
    ("GET", "/compliance/instances/{iid}", 403), ("GET", "/compliance/instances/{iid}/dossier.pdf", 403),
    ("GET", "/definitions/no_such_process", 404), ("GET", "/processes/no_such_process/start", 403),
    ("API-GET", "/api/v1/instances/{iid}", 404), ("API-POST", "/api/v1/instances/{iid}/actions", 404),
    ("API-GET", "/api/v1/instances/{missing}", 404), ("API-GET", "/api/v1/instances/99999999999", 404),
    ("POST", "/security/substitutions/{missing}/end", 404),
]


@pytest.mark.parametrize("method,url,status", IDOR, ids=[f"{m} {u}" for m, u, _s in IDOR])
def test_idor_reveals_nothing(app, people, stranger_case, method, url, status):
    """plan1 (發改局 reviewer) probes an application queued for the investment promotion centre."""
    iid, task_id, token = stranger_case
    target = url.format(iid=iid, missing=iid + 1000)
    client = app.test_client() if method.startswith("API") else as_user(app, "plan1")
    before = snapshot(app)
    if method.startswith("API"):
        headers = {"Authorization": f"Bearer {token}"}
        response = client.get(target, headers=headers) if method == "API-GET" else \
            client.post(target, headers=headers, json={"action": "claim", "task_id": task_id})
    else:
        response = client.get(target) if method == "GET" else \
            client.post(target, data={"action": "claim", "task_id": task_id, "opinion": "x"})
    assert response.status_code == status, (target, response.status_code)
    assert SECRET not in text(response) and "zhentou" not in text(response)
    assert snapshot(app) == before


def test_a_task_of_another_application_is_not_acted_on(app, people):
    """The submitter posts, on their own application, the id of a task on one they cannot see."""
    own = start(app, people)
    other = start(app, people, name="haijiang", department="haijiang")
    [foreign] = open_tasks(app, other)
    client = as_user(app, "submitter")
    before = snapshot(app)
    response = client.post(f"/instances/{own}/act", data={"action": "claim", "task_id": foreign.id})
    assert response.status_code == 302
    assert "flash-warning" in text(client.get(response.headers["Location"]))   # "no longer current"
    assert snapshot(app) == before


# ---------------------------------------------------------------- role probes
def _claimable(app, people, who="promo1"):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    return iid, task


PROBES = [
    # (who, method, url, data-kind, expected status)
    ("sysadmin", "POST", "/instances/{iid}/act", "approve", 403),
    ("secadmin", "POST", "/instances/{iid}/act", "approve", 403),
    ("auditadmin", "POST", "/instances/{iid}/act", "comment", 403),
    ("auditadmin", "POST", "/processes/review/start", "start", 403),
    ("auditadmin", "POST", "/inbox/bulk-approve", "bulk", 403),
    ("auditadmin", "POST", "/security/users", "user", 403),
    ("auditadmin", "POST", "/security/access/{promo1}/memberships", "memberships", 403),
    ("auditadmin", "POST", "/security/policy", "policy", 403),
    ("sysadmin", "GET", "/security/log", None, 403),
    ("sysadmin", "GET", "/compliance/", None, 403),
    ("sysadmin", "POST", "/security/access/{promo1}/memberships", "memberships", 403),
    ("secadmin", "GET", "/compliance/", None, 403),
    ("secadmin", "GET", "/compliance/instances/{iid}", None, 403),
    ("secadmin", "GET", "/instances/{iid}", None, 404),
    ("secadmin", "GET", "/security/log", None, 403),
    ("secadmin", "POST", "/security/users", "user", 403),
    ("promo1", "GET", "/security/users", None, 403),
    ("promo1", "POST", "/security/access/{promo1}/memberships", "memberships", 403),
    ("promo1", "POST", "/security/policy", "policy", 403),
    ("auditor", "GET", "/security/log", None, 403),
    ("econ", "POST", "/instances/{iid}/act", "claim", 404),       # reviewer of another department
]


def _probe_data(kind, task_id):
    return {"approve": {"action": "approve", "task_id": task_id, "opinion": "同意"},
            "comment": {"action": "comment", "opinion": "x"},
            "claim": {"action": "claim", "task_id": task_id},
            "start": {"department": "zhentou", **DATA},
            "bulk": {"task_ids": task_id},
            "user": {"username": "intruder", "display_name": "x"},
            "memberships": {"memberships": "sasac/head"},
            "policy": {"max_failures": 3}}.get(kind, {})


@pytest.mark.parametrize("who,method,url,kind,status", PROBES, ids=[f"{w} {m} {u}" for w, m, u, _k, _s in PROBES])
def test_role_probe_is_refused(app, people, who, method, url, kind, status):
    iid, task = _claimable(app, people)
    target = url.format(iid=iid, promo1=people["promo1"])
    client = as_user(app, who)
    before = snapshot(app)
    response = client.get(target) if method == "GET" else client.post(target, data=_probe_data(kind, task.id))
    assert response.status_code == status, (who, target, response.status_code)
    assert SECRET not in text(response)
    assert snapshot(app) == before


def test_admin_given_a_membership_by_mistake_still_cannot_decide(app, people):
    """Belt and braces: even with a membership smuggled into the database, the gate refuses."""
    iid, task = _claimable(app, people)
    from workflow_app.models import Membership
    with app.extensions["parkflow"].db.write() as s:
        s.add(Membership(user_id=people["sysadmin"], department_code="invest_promo", role="reviewer"))
    client = as_user(app, "sysadmin")
    before = snapshot(app)
    assert client.post(f"/instances/{iid}/act", data={"action": "claim", "task_id": task.id}).status_code == 403
    assert snapshot(app) == before
    with app.extensions["parkflow"].db.write() as s:
        token = create_token(s, people["sysadmin"], "t", 30, now=app.extensions["parkflow"].clock())
    api = app.test_client().post(f"/api/v1/instances/{iid}/actions", headers={"Authorization": f"Bearer {token}"},
                                 json={"action": "claim", "task_id": task.id})
    assert api.status_code == 403 and api.get_json()["details"]["reason"] == "administrator"
    assert snapshot(app)["claimed"] == before["claimed"] and snapshot(app)["trail"] == before["trail"]


def test_submitter_cannot_approve_own_application(app, people):
    """`dual` submits for 镇投 and also reviews at the investment promotion centre."""
    iid = start(app, people, name="dual")
    [task] = open_tasks(app, iid)
    client = as_user(app, "dual")
    before = snapshot(app)
    response = client.post(f"/instances/{iid}/act", data={"action": "claim", "task_id": task.id})
    assert response.status_code == 302
    assert "flash-error" in text(client.get(response.headers["Location"]))
    assert snapshot(app) == before


def test_security_admin_cannot_give_an_administrator_memberships(app, people):
    client = as_user(app, "secadmin")
    before = snapshot(app)
    response = client.post(f"/security/access/{people['sysadmin']}/memberships",
                           data={"memberships": "invest_promo/reviewer"})
    assert response.status_code == 303
    assert "三员分立" in text(client.get("/security/access"))
    assert snapshot(app) == before


def test_system_admin_cannot_reset_an_administrators_password(app, people):
    client = as_user(app, "sysadmin")
    before = snapshot(app)
    response = client.post(f"/security/users/{people['auditadmin']}/reset-password")
    assert response.status_code == 303 and snapshot(app) == before


def test_stand_in_without_a_substitution_cannot_act_for_someone(app, people):
    iid, task = _claimable(app, people)
    act(app, people, "promo1", iid, Request("claim", task.id))
    with app.extensions["parkflow"].db.write() as s:
        token = create_token(s, people["econ"], "t", 30, now=app.extensions["parkflow"].clock())
    before = snapshot(app)
    response = app.test_client().post(f"/api/v1/instances/{iid}/actions", headers={"Authorization": f"Bearer {token}"},
                                      json={"action": "approve", "task_id": task.id, "on_behalf_of": people["promo1"]})
    assert response.status_code == 403 and SECRET not in text(response)
    assert snapshot(app) == before


# ---------------------------------------------------------------- malformed input
BAD_START = [
    ("investment_wan", "1e999"), ("investment_wan", "NaN"), ("investment_wan", "Infinity"),
    ("investment_wan", "-5"), ("investment_wan", "9" * 60), ("investment_wan", "12abc"),
    ("industry", "不存在的行业"), ("project_name", "x" * 100_000), ("project_name", "新材料\x00基地"),
    ("department", "sasac"),
]


@pytest.mark.parametrize("field,value", BAD_START, ids=[f"{f}={v[:12]!r}" for f, v in BAD_START])
def test_malformed_start_form_is_refused(app, people, field, value):
    client = as_user(app, "submitter")
    before = snapshot(app)
    response = client.post("/processes/review/start", data={"department": "zhentou", **DATA, field: value})
    assert response.status_code in (200, 400, 422), response.status_code
    page = text(response)
    assert "表单有误" in page or "请选择以哪个单位发起" in page or response.status_code == 400
    assert snapshot(app) == before


BAD_OTHER = [
    ("/security/substitutions", {"substitute": "promo2", "start_date": "2026-13-45", "end_date": "2026-03-09"}),
    ("/security/substitutions", {"substitute": "promo2", "start_date": "2026-03-09", "end_date": "2026-03-02"}),
    ("/security/substitutions", {"substitute": "promo2", "start_date": "2026-03-02", "end_date": "2027-12-31"}),
    ("/security/substitutions", {"substitute": "promo1", "start_date": "2026-03-02", "end_date": "2026-03-09"}),
    ("/security/substitutions", {"substitute": "sysadmin", "start_date": "2026-03-02", "end_date": "2026-03-09"}),
    ("/security/substitutions", {"substitute": "promo2", "start_date": "2026-03-02", "end_date": "2026-03-09",
                                 "reason": "x" * 100_000}),
    ("/security/sessions/end", {"handle": "'; DROP TABLE login_session; --"}),
    ("/instances/{iid}/act", {"action": "approve", "task_id": "1e999", "opinion": "x"}),
    ("/instances/{iid}/act", {"action": "comment", "opinion": "x" * 100_000}),
    ("/instances/{iid}/act", {"action": "transfer", "task_id": "{tid}", "user": "-1"}),
]


@pytest.mark.parametrize("url,data", BAD_OTHER, ids=[f"{u} {str(d)[:40]}" for u, d in BAD_OTHER])
def test_malformed_fields_are_refused(app, people, url, data):
    iid, task = _claimable(app, people)
    act(app, people, "promo1", iid, Request("claim", task.id))
    client = as_user(app, "promo1")
    target = url.format(iid=iid)
    data = {k: (v.format(tid=task.id) if isinstance(v, str) and "{tid}" in v else v) for k, v in data.items()}
    before = snapshot(app)
    response = client.post(target, data=data)
    assert response.status_code in (302, 400, 404, 422), response.status_code
    if response.status_code == 302:
        follow = text(client.get(response.headers["Location"]))
        assert "flash-error" in follow or "flash-warning" in follow
    assert snapshot(app) == before


def test_bad_dates_in_the_log_filter_are_refused(app, people):
    client = as_user(app, "auditadmin")
    response = client.get("/security/log?date_from=2026-02-30&before=1e999")
    assert response.status_code == 422 and "查询条件有误" in text(response)


# ---------------------------------------------------------------- inert HTML, SQL as data
def test_script_in_an_opinion_is_shown_inert(app, people):
    iid, task = _claimable(app, people)
    act(app, people, "promo1", iid, Request("claim", task.id))
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'
    client = as_user(app, "promo1")
    client.post(f"/instances/{iid}/act", data={"action": "comment", "opinion": evil})
    page = text(client.get(f"/instances/{iid}"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page and "<img src=x" not in page


def test_html_in_names_is_inert_on_admin_pages(app, people):
    with app.extensions["parkflow"].db.write() as s:
        s.get(User, people["econ"]).display_name = "<b onmouseover=alert(1)>王</b>"
    page = text(as_user(app, "sysadmin").get("/security/users"))
    assert "&lt;b onmouseover=alert(1)&gt;" in page and "<b onmouseover" not in page


@pytest.mark.parametrize("url", ["/?q={q}", "/?tab=started&q={q}", "/security/users?q={q}",
                                 "/security/access?q={q}", "/security/log?username={q}&event={q}"])
def test_sql_metacharacters_in_searches_are_data(app, people, url):
    start(app, people)
    who = {"/security/users": "sysadmin", "/security/access": "secadmin", "/security/log": "auditadmin"}
    name = next((v for k, v in who.items() if url.startswith(k)), "submitter")
    client = as_user(app, name)
    before = snapshot(app)
    for needle in ("' OR '1'='1", "%", "_", "\\", "'; DROP TABLE app_user; --"):
        response = client.get(url.format(q=needle))
        assert response.status_code == 200, (url, needle)
        assert SECRET not in text(response)
    after = snapshot(app)
    assert after["users"] == before["users"] and after["trail"] == before["trail"]
    with app.extensions["parkflow"].db.read() as s:
        assert s.scalar(select(ProcessInstance.id)) is not None
