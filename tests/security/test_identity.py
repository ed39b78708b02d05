"""身份鉴别: lockout (time frozen with time-machine), the lock and unlock in the security log, the
TOTP second step (replay refused), what must be done first (initial / expired password, a
required second factor), idle expiry, logout revocation, "my sessions", and the login rate limit
(in memory, and against the real Redis the production configuration points at)."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from tests.security.conftest import add_crowd, security_events, snapshot
from tests.web.helpers import PASSWORD, as_user, csrf_token, text
from workflow_app.models import LoginSession, User
from workflow_app.services import second_factor

T0 = datetime(2026, 6, 1, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def timed(make_app):
    """An app on the real clock, frozen by time-machine at T0."""
    with time_machine.travel(T0, tick=False) as traveller:
        app = make_app(real_clock=True)
        people = add_crowd(app, T0)
        yield app, people, traveller


def attempt(client, username: str, password: str):
    return client.post("/login", data={"username": username, "password": password})


def test_five_failures_lock_for_thirty_minutes_then_unlock_is_logged(timed):
    app, _people, traveller = timed
    client = app.test_client()
    for _ in range(4):
        assert "用户名或密码错误" in text(attempt(client, "promo1", "wrong"))
    locked = attempt(client, "promo1", "wrong")
    assert locked.status_code == 401 and "账户已锁定 30 分钟" in text(locked)
    before = snapshot(app)
    refused = attempt(client, "promo1", PASSWORD)                     # the right password, too early
    assert refused.status_code == 401 and "账户已锁定" in text(refused)
    after = snapshot(app)
    assert after["live_sessions"] == before["live_sessions"] and after["security_log"] == before["security_log"] + 1
    [lock] = security_events(app, "locked")
    assert lock.username == "promo1" and lock.details["minutes"] == 30
    traveller.shift(timedelta(minutes=29))
    assert attempt(client, "promo1", PASSWORD).status_code == 401
    traveller.shift(timedelta(minutes=2))
    assert attempt(client, "promo1", PASSWORD).status_code == 302
    [unlock] = security_events(app, "unlocked")
    assert unlock.username == "promo1" and unlock.details["reason"] == "lock expired"


def test_security_admin_unlocks_and_it_is_logged(timed):
    app, people, _traveller = timed
    client = app.test_client()
    for _ in range(5):
        attempt(client, "promo1", "wrong")
    secadmin = as_user(app, "secadmin")
    assert "解除锁定" in text(secadmin.get("/security/access"))
    assert secadmin.post(f"/security/access/{people['promo1']}/unlock").status_code == 302
    [unlock] = security_events(app, "unlocked")
    assert unlock.username == "secadmin" and unlock.details["target"] == "promo1" and unlock.details["was_locked"]
    assert attempt(client, "promo1", PASSWORD).status_code == 302


def test_idle_session_expires_and_admins_sooner(timed):
    app, _people, traveller = timed
    user, admin = as_user(app, "promo1"), as_user(app, "secadmin")
    traveller.shift(timedelta(minutes=16))
    assert user.get("/").status_code == 200
    expired = admin.get("/security/")
    assert expired.status_code == 302 and "/login" in expired.headers["Location"]   # 15 minutes for 三员
    traveller.shift(timedelta(minutes=31))
    gone = user.get("/")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]
    assert {e.username for e in security_events(app, "session_expired")} == {"promo1", "secadmin"}


def test_logout_revokes_the_copied_cookie(app, people):
    client = as_user(app, "promo1")
    cookie = client.get_cookie("session").value
    client.post("/logout")
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    before = snapshot(app)
    response = replay.post("/security/substitutions", data={"substitute": "promo2", "start_date": "2026-03-02",
                                                            "end_date": "2026-03-09"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert snapshot(app) == before


def sid_of(app, client) -> str:
    """The server-side session id inside a client's signed cookie."""
    cookie = client.get_cookie("session").value
    return app.session_interface.get_signing_serializer(app).loads(cookie)["_user_id"]


def test_my_sessions_lists_and_ends_another_device(app, people):
    laptop, phone = as_user(app, "promo1"), as_user(app, "promo1")
    page = text(laptop.get("/security/sessions"))
    phone_handle = sid_of(app, phone)[:12]
    assert page.count('name="handle"') == 2 and "当前会话" in page and f'value="{phone_handle}"' in page
    ended = laptop.post("/security/sessions/end", data={"handle": phone_handle})
    assert ended.status_code == 302 and ended.headers["Location"].endswith("/security/sessions")
    assert phone.get("/").status_code == 302 and laptop.get("/").status_code == 200
    [event] = security_events(app, "session_ended")
    assert event.username == "promo1" and event.details["session_handle"] == phone_handle


def test_ending_someone_elses_session_is_404(app, people):
    as_user(app, "promo2")
    with app.extensions["parkflow"].db.read() as s:
        theirs = s.scalar(select(LoginSession.id).where(LoginSession.user_id == people["promo2"]))
    client = as_user(app, "promo1")
    before = snapshot(app)
    assert client.post("/security/sessions/end", data={"handle": theirs[:12]}).status_code == 404
    assert snapshot(app) == before


# ---------------------------------------------------------------- what must be done first
def test_initial_password_must_be_changed_before_anything_else(app, people):
    with app.extensions["parkflow"].db.write() as s:
        s.get(User, people["submitter"]).must_change_password = True
    client = as_user(app, "submitter")
    before = snapshot(app)
    page = client.get("/")
    assert page.status_code == 302 and page.headers["Location"].endswith("/password")
    assert client.post("/processes/review/start", data={"department": "zhentou"}).status_code == 403
    assert snapshot(app) == before
    changed = client.post("/password", data={"current": PASSWORD, "new": "Newer#Pass2026", "confirm": "Newer#Pass2026"})
    assert changed.status_code == 302
    assert client.get("/").status_code == 200


def test_expired_password_must_be_changed(app, people, clock):
    with app.extensions["parkflow"].db.write() as s:
        s.get(User, people["promo1"]).password_changed_at = clock() - timedelta(days=91)
    client = as_user(app, "promo1")
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/password")
    assert "密码已超过有效期" in text(client.get("/password"))


def test_required_second_factor_must_be_enrolled_first(make_app, clock):
    app = make_app(enforce_2fa=True)
    add_crowd(app, clock())
    for name in ("sysadmin", "secadmin", "auditadmin", "sasac", "auditor"):
        client = as_user(app, name)
        response = client.get("/")
        assert response.status_code == 302 and response.headers["Location"].endswith("/security/totp"), name
    plain = as_user(app, "promo1")
    assert plain.get("/").status_code == 200                          # optional for others


def test_totp_enrolment_then_login_needs_a_fresh_code(timed):
    app, people, traveller = timed
    client = as_user(app, "sasac")
    page = text(client.get("/security/totp"))
    secret = page.split('<code class="secret">')[1].split("<")[0]
    totp = pyotp.TOTP(secret)
    assert client.post("/security/totp", data={"code": "000000" if totp.now() != "000000" else "111111"}).status_code == 422
    assert client.post("/security/totp", data={"code": totp.now()}).status_code == 302
    with app.extensions["parkflow"].db.read() as s:
        stored = s.get(User, people["sasac"]).totp_secret
    assert stored.startswith("v1.") and secret not in stored          # sealed at rest

    traveller.shift(timedelta(seconds=90))
    fresh = app.test_client()
    first = attempt(fresh, "sasac", PASSWORD)
    assert first.status_code == 302 and "/login/code" in first.headers["Location"]
    assert fresh.get("/").status_code == 302                         # not signed in between the steps
    before = snapshot(app)
    wrong = fresh.post("/login/code", data={"code": "12345x"})
    assert wrong.status_code == 401 and "动态验证码不正确" in text(wrong)
    assert snapshot(app)["live_sessions"] == before["live_sessions"]
    code = totp.now()
    assert fresh.post("/login/code", data={"code": code}).status_code == 302
    assert fresh.get("/").status_code == 200
    # the same code again (read over a shoulder) is refused
    thief = app.test_client()
    attempt(thief, "sasac", PASSWORD)
    before = snapshot(app)
    replay = thief.post("/login/code", data={"code": code})
    assert replay.status_code == 401 and snapshot(app)["live_sessions"] == before["live_sessions"]


def test_second_factor_failures_count_towards_the_lock(timed):
    app, people, _traveller = timed
    raw = second_factor.new_secret()
    with app.extensions["parkflow"].db.write() as s:
        s.get(User, people["auditor"]).totp_secret = second_factor.seal(raw, people["auditor"], app.secret_key)
    client = app.test_client()
    attempt(client, "auditor", PASSWORD)
    for _ in range(4):
        assert client.post("/login/code", data={"code": "999999"}).status_code == 401
    last = client.post("/login/code", data={"code": "999999"})
    assert "账户已锁定" in text(last)
    assert [e.username for e in security_events(app, "locked")] == ["auditor"]


def test_sealed_secret_cannot_be_moved_to_another_account(app, people):
    raw = second_factor.new_secret()
    sealed = second_factor.seal(raw, people["auditor"], app.secret_key)
    assert second_factor.unseal(sealed, people["auditor"], app.secret_key) == raw
    with pytest.raises(second_factor.SealError):
        second_factor.unseal(sealed, people["promo1"], app.secret_key)
    with pytest.raises(second_factor.SealError):
        second_factor.unseal(sealed, people["auditor"], "another-key")


# ---------------------------------------------------------------- rate limits
def test_login_is_rate_limited_per_address(make_app, clock):
    app = make_app(RATELIMIT_ENABLED=True)
    add_crowd(app, clock())
    client = app.test_client()
    for _ in range(20):
        assert attempt(client, f"nobody{uuid.uuid4().hex[:6]}", "x").status_code == 401
    before = snapshot(app)
    limited = attempt(client, "promo1", PASSWORD)
    assert limited.status_code == 429 and snapshot(app) == before


def test_production_config_keeps_rate_limits_in_redis():
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/3", "SECRET_KEY": "x" * 32,
           "DATABASE_URL": "postgresql://u@h/db", "PARKFLOW_CONFIG": "prod"}
    out = subprocess.run([sys.executable, "-c", "from config import ProdConfig as C; c = C(); "
                          "print(c.RATELIMIT_STORAGE_URI, c.SESSION_COOKIE_SECURE, c.DEMO_ALLOWED)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["redis://127.0.0.1:6379/3", "True", "False"]


def test_login_rate_limit_against_real_redis(make_app, clock):
    redis = pytest.importorskip("redis")
    client_ = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
    try:
        client_.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 is unreachable ({exc}); production keeps limits there")
    from workflow_app.extensions import limiter
    prefix = f"parkflow-test-{uuid.uuid4().hex}"
    # The Limiter is one module-level object and keeps the first key prefix it was given: set ours.
    old_prefix, limiter._key_prefix = limiter._key_prefix, prefix
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
                   RATELIMIT_KEY_PREFIX=prefix)
    add_crowd(app, clock())
    try:
        web = app.test_client()
        for _ in range(20):
            attempt(web, "nobody", "x")
        before = snapshot(app)
        assert attempt(web, "promo1", PASSWORD).status_code == 429
        assert snapshot(app) == before
        assert any(k.decode().startswith(prefix) or prefix in k.decode() for k in client_.keys(f"*{prefix}*"))
        again = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
                         RATELIMIT_KEY_PREFIX=prefix)             # a second process shares the count
        assert attempt(again.test_client(), "promo1", PASSWORD).status_code == 429
    finally:
        limiter._key_prefix = old_prefix
        for key in client_.scan_iter(f"*{prefix}*"):
            client_.delete(key)
        client_.close()


def test_csrf_token_on_the_code_form(make_app, clock):
    app = make_app(csrf=True)
    people = add_crowd(app, clock())
    raw = second_factor.new_secret()
    with app.extensions["parkflow"].db.write() as s:
        s.get(User, people["auditor"]).totp_secret = second_factor.seal(raw, people["auditor"], app.secret_key)
    client = app.test_client()
    token = csrf_token(text(client.get("/login")))
    client.post("/login", data={"username": "auditor", "password": PASSWORD, "csrf_token": token})
    page = text(client.get("/login/code"))
    assert csrf_token(page)
    before = snapshot(app)
    code = pyotp.TOTP(second_factor.as_text(raw)).at(clock())
    assert client.post("/login/code", data={"code": code}).status_code == 400
    assert snapshot(app) == before
    ok = client.post("/login/code", data={"code": code, "csrf_token": csrf_token(page)})
    assert ok.status_code == 302
