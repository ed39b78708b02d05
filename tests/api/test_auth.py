"""Bearer tokens: only the token authenticates; refusals are 401 in the API's error shape, logged,
and rate-limited per address; the browser session cookie is not accepted."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.api.conftest import bearer
from workflow_app.models import ApiToken, SecurityEvent
from workflow_app.services.tokens import create_token, hash_token, revoke_token


def assert_401(response, reason: str) -> None:
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"] == "unauthorized" and body["details"] == {"reason": reason} and body["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_valid_token_identifies_the_user(client, tokens, people):
    r = client.get("/api/v1/me", headers=bearer(tokens["promo1"]))
    assert r.status_code == 200
    me = r.get_json()
    assert me["id"] == people["promo1"] and me["username"] == "promo1"
    assert me["memberships"] == [{"department": "invest_promo", "role": "reviewer"}]
    assert me["token"]["name"] == "promo1 script"


@pytest.mark.parametrize("headers, reason", [
    ({}, "missing"),
    ({"Authorization": "Basic cHJvbW8xOnNlY3JldA=="}, "missing"),
    ({"Authorization": "Bearer pf_not-a-real-token"}, "invalid"),
    ({"Authorization": "Bearer " + "x" * 300}, "invalid"),
])
def test_missing_or_bad_token_is_401(client, tokens, headers, reason):
    assert_401(client.get("/api/v1/tasks", headers=headers), reason)


def test_revoked_token_is_401(app, client, tokens, people, clock):
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(tokens["promo1"])))
        assert revoke_token(s, row.id, now=clock())
    assert_401(client.get("/api/v1/me", headers=bearer(tokens["promo1"])), "revoked")


def test_expired_token_is_401(client, tokens, clock):
    assert client.get("/api/v1/me", headers=bearer(tokens["promo1"])).status_code == 200
    clock.now += timedelta(days=30)
    assert_401(client.get("/api/v1/me", headers=bearer(tokens["promo1"])), "expired")


def test_only_the_hash_is_stored_and_use_is_recorded(app, client, tokens, clock):
    svc = app.extensions["parkflow"]
    client.get("/api/v1/me", headers=bearer(tokens["econ"]))
    with svc.db.read() as s:
        rows = s.scalars(select(ApiToken)).all()
        assert all(tokens["econ"] not in (r.token_hash, r.name) for r in rows)
        used = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(tokens["econ"])))
        assert used.last_used_at == clock()


def test_refusals_are_in_the_security_log(app, client, tokens):
    client.get("/api/v1/me", headers=bearer("pf_guess"))
    with app.extensions["parkflow"].db.read() as s:
        events = s.scalars(select(SecurityEvent).where(SecurityEvent.event == "api_auth_failed")).all()
    assert [e.details["reason"] for e in events] == ["invalid"] and events[0].outcome == "refused"


def test_create_token_checks_its_capacity(app, people, clock):
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        with pytest.raises(ValueError):
            create_token(s, people["promo1"], "x", 30, "sasac", "head", now=clock())
        with pytest.raises(ValueError):
            create_token(s, people["promo1"], "x", 400, now=clock())
        with pytest.raises(ValueError):
            create_token(s, people["promo1"], "x", 30, "invest_promo", None, now=clock())
        token = create_token(s, people["promo1"], "x", 30, "invest_promo", "reviewer", now=clock())
    assert token.startswith("pf_") and len(token) > 40


def test_acting_capacity_comes_from_the_token(app, client, people, clock):
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        token = create_token(s, people["sasac_xingyu"], "xingyu", 30, "xingyu", "reviewer", now=clock())
    acting = client.get("/api/v1/me", headers=bearer(token)).get_json()["acting"]
    assert acting == {"department": "xingyu", "role": "reviewer"}


def test_browser_session_cookie_is_not_accepted(app, client, people):
    """A signed-in browser (server-side session cookie) gets nothing from the API without a token."""
    app.config["WTF_CSRF_ENABLED"] = False  # the login form's CSRF is not what is tested here
    signed_in = client.post("/login", data={"username": "promo1", "password": "Parkflow#2026"})
    assert signed_in.status_code == 302
    assert client.get("/api/v1/me").status_code == 401
    assert_401(client.get("/api/v1/tasks"), "missing")
    posted = client.post("/api/v1/instances", json={"process": "review", "department": "zhentou", "data": {}})
    assert_401(posted, "missing")


def test_auth_failures_are_rate_limited_per_address(app, client, tokens):
    app.config["API_AUTH_FAILURE_LIMIT"] = "3 per minute"
    for _ in range(3):
        assert client.get("/api/v1/me", headers=bearer("pf_wrong")).status_code == 401
    limited = client.get("/api/v1/tasks", headers=bearer("pf_wrong"))
    assert limited.status_code == 429
    assert limited.get_json()["error"] == "rate_limited"
    # the counter is per address, across endpoints; another address is unaffected
    other = client.get("/api/v1/me", headers=bearer(tokens["promo1"]), environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200


def test_successful_requests_do_not_count_against_the_limit(app, client, tokens):
    app.config["API_AUTH_FAILURE_LIMIT"] = "3 per minute"
    for _ in range(10):
        assert client.get("/api/v1/me", headers=bearer(tokens["promo1"])).status_code == 200


@pytest.mark.parametrize("change, reason", [("locked", "locked"), ("disabled", "inactive")])
def test_token_of_a_locked_or_disabled_account_is_refused(app, client, tokens, people, clock, change, reason):
    """A lockout (after failed logins) or disabling stops the account's scripts too; a lock that
    has run out lets the token work again."""
    from workflow_app.models import User

    svc = app.extensions["parkflow"]
    assert client.get("/api/v1/me", headers=bearer(tokens["promo1"])).status_code == 200
    with svc.db.write() as s:
        user = s.get(User, people["promo1"])
        if change == "locked":
            user.locked_until = clock() + timedelta(minutes=30)
        else:
            user.is_active = False
    assert_401(client.get("/api/v1/tasks", headers=bearer(tokens["promo1"])), reason)
    with svc.db.read() as s:
        last = s.scalars(select(SecurityEvent).order_by(SecurityEvent.id.desc())).first()
    assert last.event == "api_auth_failed" and last.details["reason"] == reason and last.username == "promo1"
    if change == "locked":
        clock.now += timedelta(minutes=31)
        assert client.get("/api/v1/me", headers=bearer(tokens["promo1"])).status_code == 200
