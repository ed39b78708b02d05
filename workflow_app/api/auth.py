"""Bearer-token authentication for /api/v1, and the per-IP limit on failed attempts.

Only `Authorization: Bearer <token>` authenticates. The browser's session cookie is never
consulted (nothing here touches Flask-Login), so a page open in a browser cannot be turned into
API calls by another site; that is also why the API blueprints are exempt from CSRF.

Every refusal answers 401 in the API's error shape with `details.reason` (missing, invalid,
revoked, expired, inactive, locked), is written to the security log, and counts against the client's IP:
after `API_AUTH_FAILURE_LIMIT` (default 20 per minute) failures the IP gets 429 until the window
ends. Successful requests do not count.
"""
from __future__ import annotations

from apiflask import HTTPTokenAuth
from flask import current_app, g, request

from ..container import services
from ..models import User
from ..services import accounts, tokens

auth = HTTPTokenAuth(scheme="Bearer", description="An API token (`pf_...`) issued to a user; "
                     "send `Authorization: Bearer <token>`.")

DEFAULT_FAILURE_LIMIT = "20 per minute"
FAILURE_SCOPE = "api-auth-failures"

_MESSAGES = {
    "missing": "send an API token: Authorization: Bearer <token>",
    "invalid": "the API token is not valid",
    "revoked": "the API token has been revoked",
    "expired": "the API token has expired",
    "inactive": "the account behind the API token is disabled",
    "locked": "the account behind the API token is locked",
}


@auth.verify_token
def _verify(token: str) -> tokens.TokenIdentity | None:
    svc = services()
    now = svc.clock()
    known = g.get("api_token_identity")  # identified this request by the 三员 gate (web/security.py)
    try:
        if known is not None and known[0] == token:
            identity = known[1]
        else:
            with svc.db.peek() as s:  # one statement: no transaction around it on PostgreSQL
                identity = tokens.identify(s, token, now=now)
    except tokens.TokenRefused as refused:
        g.api_auth_refusal = refused.reason
        if refused.reason != "missing":  # an absent header is a client mistake, not an attempt
            with svc.db.write() as s:
                owner = s.get(User, refused.user_id) if refused.user_id else None
                accounts.log(s, "api_auth_failed", now=now, user=owner, ip=(request.remote_addr or "")[:64],
                             outcome="refused", reason=refused.reason, token_id=refused.token_id)
        return None
    if identity.needs_touch:
        with svc.db.write() as s:
            tokens.touch(s, identity.token_id, now=now)
    return identity


@auth.error_processor
def _refused(error):
    reason = g.get("api_auth_refusal", "missing")
    return ({"error": "unauthorized", "message": _MESSAGES.get(reason, _MESSAGES["invalid"]),
             "details": {"reason": reason}}, error.status_code,
            {"WWW-Authenticate": 'Bearer realm="ParkFlow API"'})


def current() -> tokens.TokenIdentity:
    """The identity of this request's token (views run only after authentication)."""
    return auth.current_user  # type: ignore[return-value]


def failure_limit() -> str:
    return current_app.config.get("API_AUTH_FAILURE_LIMIT", DEFAULT_FAILURE_LIMIT)


def is_auth_failure(response) -> bool:
    return response.status_code == 401
