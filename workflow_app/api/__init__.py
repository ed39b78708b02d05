"""JSON API under /api/v1, documented by OpenAPI at /api/v1/openapi.json (docs: docs/api.md).

Bearer tokens only (auth.py); the same service layer and permission checks as the pages;
errors in one shape (errors.py); `Idempotency-Key` on POSTs (idempotency.py).
"""
from __future__ import annotations

from apiflask import APIFlask


def register_api(app: APIFlask) -> None:
    from ..extensions import csrf, limiter
    from . import auth, errors, files, inbox, instances, meta

    errors.install(app)
    app.spec_processor(lambda spec: files.document_multipart(_bodies_required(spec)))
    for module in (instances, files, inbox, meta):
        # Token auth only: a cross-site form cannot carry the bearer header, so CSRF does not apply
        # (and the session cookie is never read).
        csrf.exempt(module.bp)
        # Failed authentications per client address, across every API endpoint (one shared
        # counter); successful requests are not counted.
        limiter.shared_limit(auth.failure_limit, scope=auth.FAILURE_SCOPE,
                             deduct_when=auth.is_auth_failure)(module.bp)
        app.register_blueprint(module.bp)
    _docs_page(app)


def _docs_page(app: APIFlask) -> None:
    """/api/v1/docs: Swagger UI over the OpenAPI document, from vendored files (no CDN)."""
    from flask import Blueprint, render_template

    bp = Blueprint("api_docs", __name__)

    @bp.get("/api/v1/docs")
    def docs():
        response = app.make_response(render_template("api/docs.html"))
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    app.register_blueprint(bp)


def _bodies_required(spec: dict) -> dict:
    """Every request body of the API is required (APIFlask leaves `requestBody.required` out)."""
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return spec
