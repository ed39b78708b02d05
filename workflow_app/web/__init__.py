"""HTML blueprints, error pages, security headers and the template helpers they share."""
from __future__ import annotations

from flask import Flask, flash, g, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from ..engine.errors import ActionError
from . import labels
from .pages import tr


def register(app: Flask) -> None:
    from . import auth
    from .pages import register_pages

    app.register_blueprint(auth.bp)
    register_pages(app)
    labels.install(app)

    from ..extensions import login_manager
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录"
    # Flask-Login flashes login_message through this: the prompt in the page's language.
    login_manager.localize_callback = lambda message: tr(message, SIGN_IN_FIRST) if message == "请先登录" else message
    login_manager.session_protection = None  # the server-side session row is the protection

    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = response.headers.get("Cache-Control", "no-store")
        response.headers.pop("Server", None)
        return response

    def wants_json() -> bool:
        return request.path.startswith("/api/")

    @app.errorhandler(CSRFError)
    def csrf_error(err):
        if wants_json():
            return jsonify(error="csrf", message=err.description), 400
        return render_template("errors/error.html", code=400, title=tr("请求已失效", "Request expired"),
                               message=tr("页面已过期或请求来源无法验证（CSRF），请刷新后重试。",
                                          "The page expired or the request's origin could not be "
                                          "verified (CSRF). Reload the page and try again.")), 400

    for code, title, message in ERRORS:
        def handler(err, code=code, title=title, message=message):
            if code == 403:  # every refusal goes to the security log with its reason code
                log_refusal("access_denied", g.refusal_reason if g.get("refusal_reason") is not None
                            else getattr(err, "description", None))
            if wants_json():
                return jsonify(error={403: "forbidden", 404: "not_found", 500: "server_error"}[code],
                               message=message[1]), code
            return render_template("errors/error.html", code=code, title=labels.pick(title),
                                   message=labels.pick(message)), code
        app.register_error_handler(code, handler)

    @app.errorhandler(413)
    def too_large(err):
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        if wants_json():
            return jsonify(error="too_large", message=f"the request is larger than {limit} bytes",
                           details={"max_bytes": limit}), 413
        flash(tr(f"上传的文件过大（整个请求不能超过 {limit // (1024 * 1024)} MB）",
                 f"The upload is too large (at most {limit // (1024 * 1024)} MB per request)"), "error")
        return redirect(request.referrer if _same_site(request.referrer) else url_for("inbox.index"))

    @app.errorhandler(ActionError)
    def action_error(err: ActionError):
        status = {"forbidden": 403, "conflict": 409, "not_found": 404}.get(err.code, 422)
        if status == 403:  # refused by the engine: self-approval, recusal, not assigned ...
            log_refusal("action_refused", str(err.details.get("reason") or "forbidden"),
                        message=err.message[:200], task_id=err.details.get("task_id"))
        if wants_json():
            return jsonify(error=err.code, message=err.message, details=_plain(err.details)), status
        if status == 409:
            flash(tr(f"操作未生效：{err.message}。以下是最新状态。",
                     f"Not done: {err.message}. This is the current state."), "warning")
        else:
            flash(err.message, "error")
        return redirect(request.referrer if _same_site(request.referrer) else url_for("inbox.index"))


def log_refusal(event: str, reason: str | None, **details: object) -> None:
    """A refused request in the security log: who (signed-in person or API token's owner), from
    where, what (method, path, endpoint) and why (a reason code). Its own transaction: the
    refused request itself wrote nothing."""
    from flask_login import current_user

    from ..container import services
    from ..models import User
    from ..services import accounts

    user_id = None
    if current_user and current_user.is_authenticated:
        user_id = current_user.id
    elif request.path.startswith("/api/"):
        who = g.get("flask_httpauth_user")
        user_id = getattr(who, "user_id", None)
    reason = reason if isinstance(reason, str) and len(reason) <= 40 and reason.isidentifier() else "forbidden"
    svc = services()
    with svc.db.write() as s:
        accounts.log(s, event, now=svc.clock(), user=s.get(User, user_id) if user_id else None,
                     ip=(request.remote_addr or "")[:64], outcome="refused", reason=reason,
                     method=request.method, path=request.path[:200], endpoint=request.endpoint,
                     **{k: v for k, v in details.items() if v is not None})


SIGN_IN_FIRST = "Please sign in first"
ERRORS = (  # code, title, message (Chinese, English)
    (403, ("无权访问", "Not allowed"), ("您没有权限查看或操作此内容。", "You may not see or do this.")),
    (404, ("未找到", "Not found"), ("您访问的内容不存在，或您无权查看。", "This does not exist, or you may not see it.")),
    (500, ("系统错误", "Server error"), ("系统出现错误，操作未生效。请稍后重试或联系管理员。",
                                     "Something went wrong and nothing was changed. Try again later "
                                     "or contact the administrator.")),
)


def _same_site(url: str | None) -> bool:
    return bool(url) and url.startswith(request.host_url)


def _plain(details: dict) -> dict:
    return {k: v if isinstance(v, (str, int, float, bool, list, dict, type(None))) else str(v)
            for k, v in details.items()}
