"""The API's one error shape, for the errors APIFlask raises itself (request validation, 405,
429 from the rate limiter, malformed JSON), so that they look like the engine errors the web
layer already maps (web/__init__.py): `{"error": code, "message": ..., "details": {...}}`.

APIFlask has one error processor per application, so this shape also applies to HTTP errors of
the HTML pages that have no handler of their own (405, 429): those were JSON already (APIFlask's
default); the web layer's own handlers for 403/404/500 and CSRF are untouched.
"""
from __future__ import annotations

from apiflask import APIFlask
from apiflask.exceptions import HTTPError

from .schemas import ERROR_SCHEMA

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
         422: "invalid", 429: "rate_limited", 500: "server_error"}

# Documented on every operation, all with ERROR_SCHEMA.
COMMON = {401: "missing, invalid, revoked or expired token (`details.reason`)",
          403: "not allowed to do this (`forbidden`)",
          404: "no such thing, or not visible to you (`not_found`)",
          409: "someone else acted first, or the state no longer allows it (`conflict`)",
          422: "the request is invalid: `details` names the fields (`invalid`)",
          429: "too many failed authentications from this address (`rate_limited`)"}
# ... and on operations with a JSON body.
WITH_BODY = {**COMMON, 400: "the body is not JSON at all (`bad_request`)"}


def body(error: HTTPError) -> dict:
    code = CODES.get(error.status_code, "error")
    if error.status_code == 422 and error.detail:  # request validation: {location: {field: [msgs]}}
        return {"error": code, "message": "the request is invalid", "details": error.detail}
    details = dict(error.detail) if isinstance(error.detail, dict) else {}
    details.update(error.extra_data or {})
    return {"error": code, "message": error.message or code.replace("_", " "), "details": details}


def install(app: APIFlask) -> None:
    app.config["HTTP_ERROR_SCHEMA"] = ERROR_SCHEMA
    app.config["VALIDATION_ERROR_SCHEMA"] = ERROR_SCHEMA
    app.config["VALIDATION_ERROR_DESCRIPTION"] = COMMON[422]
    app.config["AUTH_ERROR_DESCRIPTION"] = COMMON[401]

    @app.error_processor
    def _api_error(error: HTTPError):
        return body(error), error.status_code, error.headers
