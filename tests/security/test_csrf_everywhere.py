"""CSRF on every state-changing web endpoint, found by walking the application's url_map rather
than from a hand-kept list (a new POST route is covered the day it is added).

Every rule that accepts POST (or PUT, PATCH, DELETE) outside /api/ must refuse a request without a
CSRF token with 400 — for a visitor and for a signed-in person — and write nothing. The JSON API
(/api/v1) is exempt by design: it authenticates only `Authorization: Bearer` tokens and never
reads the session cookie (api/auth.py), so a forged cross-site request carries no credential;
the last test shows a signed-in browser's cookie is not accepted there."""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

from tests.security.conftest import snapshot
from tests.web.helpers import as_user, text

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MUST_INCLUDE = {"/login", "/logout", "/password", "/notifications/1/read", "/parks/import"}


def unsafe_web_routes(app) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) & UNSAFE):
            values = {arg: 1 if isinstance(rule._converters[arg], IntegerConverter) else "x"
                      for arg in rule.arguments}
            if rule.endpoint == "auth.set_locale":
                values["code"] = "en"
            found.append((method, rule.build(values, append_unknown=False)[1]))
    return sorted(found)


def test_every_unsafe_web_endpoint_refuses_a_request_without_a_csrf_token(make_app, clock):
    from tests.security.conftest import add_crowd

    app = make_app(csrf=True)
    add_crowd(app, clock())
    routes = unsafe_web_routes(app)
    paths = {path for _m, path in routes}
    assert MUST_INCLUDE <= paths, MUST_INCLUDE - paths
    assert len(routes) >= 25
    signed_in = as_user(app, "promo1")
    visitor = app.test_client()
    before = snapshot(app)
    for method, path in routes:
        for client in (visitor, signed_in):
            response = client.open(path, method=method, data={"username": "promo1", "password": "x"})
            assert response.status_code == 400, (method, path, response.status_code)
            assert "CSRF" in text(response), (method, path)
            wrong = client.open(path, method=method, data={"csrf_token": "forged"})
            assert wrong.status_code == 400, (method, path, "wrong token")
    assert snapshot(app) == before


def test_the_api_ignores_the_session_cookie(make_app, clock):
    from tests.security.conftest import add_crowd

    app = make_app(csrf=True)
    add_crowd(app, clock())
    browser = as_user(app, "promo1")
    before = snapshot(app)
    response = browser.post("/api/v1/instances", json={"process": "review", "department": "zhentou",
                                                       "data": {"project_name": "x"}})
    assert response.status_code == 401 and response.get_json()["details"]["reason"] == "missing"
    assert snapshot(app) == before
