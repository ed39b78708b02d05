"""Signing in and out, CSRF on every form, the header's capacity and language switches."""
from __future__ import annotations

import re

from tests.web.helpers import PASSWORD, as_user, csrf_token, login, open_tasks, start, text


def test_login_logout_revokes_the_session_server_side(app, people):
    client = as_user(app, "promo1")
    assert client.get("/").status_code == 200
    old_cookie = client.get_cookie("session").value
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")

    replay = app.test_client()  # somebody kept a copy of the cookie
    replay.set_cookie("session", old_cookie)
    response = replay.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_wrong_password_is_refused_in_chinese(app, people):
    response = app.test_client().post("/login", data={"username": "promo1", "password": "nope"})
    assert response.status_code == 401
    assert "用户名或密码错误" in text(response)


def test_pages_need_a_signed_in_user(app, people):
    client = app.test_client()
    for url in ("/", "/processes", "/definitions", "/instances/1"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_post_without_csrf_token_is_400(make_app, clock):
    app = make_app(csrf=True)
    svc = app.extensions["parkflow"]
    from tests.factories import create_people
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        people = create_people(s)
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    client = app.test_client()
    login(client, "promo1")  # the helper posts the login form's token
    response = client.post(f"/instances/{iid}/act", data={"action": "claim", "task_id": task.id})
    assert response.status_code == 400
    assert "请求已失效" in text(response)
    assert open_tasks(app, iid)[0].assignee_id is None  # nothing happened

    assert app.test_client().post("/login", data={"username": "promo1", "password": PASSWORD}).status_code == 400


def test_every_post_form_carries_a_csrf_token_and_it_works(make_app, clock):
    app = make_app(csrf=True)
    svc = app.extensions["parkflow"]
    from tests.factories import create_people
    with svc.db.write() as s:
        svc.store.sync(s, clock())
        people = create_people(s)
    iid = start(app, people)
    client = app.test_client()
    login(client, "promo1")
    for url in ("/", "/?tab=queue", f"/instances/{iid}"):
        html = text(client.get(url))
        forms = re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.S)
        posts = [f for f in forms if 'method="post"' in f]
        assert posts, url
        for form in posts:
            assert 'name="csrf_token"' in form, (url, form[:200])
    [task] = open_tasks(app, iid)
    token = csrf_token(text(client.get(f"/instances/{iid}")))
    response = client.post(f"/instances/{iid}/act",
                           data={"action": "claim", "task_id": task.id, "csrf_token": token})
    assert response.status_code == 302
    assert open_tasks(app, iid)[0].assignee_id == people["promo1"]


def test_language_switch_changes_labels(app, people):
    iid = start(app, people)
    client = as_user(app, "submitter")
    html = text(client.get("/"))
    assert "待办" in html and "To do" not in html and 'lang="zh-CN"' in html
    client.post("/locale/en")
    html = text(client.get("/?tab=started"))
    assert "To do" in html and "Started by me" in html and "待办" not in html
    assert "In progress" in html  # the status label
    page = text(client.get(f"/instances/{iid}"))
    assert "Timeline" in page and "Withdraw" in page and "Investment Promotion Centre" in page
    client.post("/locale/zh_Hans_CN")
    assert "待办" in text(client.get("/"))


def test_acting_capacity_switch(app, people):
    client = as_user(app, "sasac_xingyu")
    html = text(client.get("/"))
    assert "切换身份" in html
    assert "区国资中心 · 负责人" in html and "星寓公司 · 审核人" in html
    client.post("/act-as", data={"department": "xingyu", "role": "reviewer"})
    header = text(client.get("/")).split('class="who"')[1][:400]
    assert "星寓公司 · 审核人" in header
    # a capacity the user does not hold is refused
    client.post("/act-as", data={"department": "econ_it", "role": "reviewer"})
    header = text(client.get("/")).split('class="who"')[1][:400]
    assert "星寓公司 · 审核人" in header


def test_error_page_is_friendly(app, people):
    client = as_user(app, "promo1")
    response = client.get("/instances/999999")
    assert response.status_code == 404
    html = text(response)
    assert "未找到" in html and "返回我的待办" in html


def test_password_page_and_english_error_page(app, people):
    client = as_user(app, "promo1")
    html = text(client.get("/password"))
    assert "修改密码" in html and 'name="confirm"' in html
    client.post("/locale/en")
    response = client.get("/instances/999999")
    assert response.status_code == 404 and "Not found" in text(response) and "未找到" not in text(response)
