"""账户与安全 (`/security`): a person's own sessions, second factor and stand-ins; and, through
`security_admin`, the three administrators' pages. `register(app)` also installs the gate every
page request passes (`before_request`):

1. Someone who must first change an initial or expired password, or enrol a required second
   factor, reaches only the pages that do that (and sign-out, language); anything else redirects
   there (GET) or is refused with 403 (other methods), so nothing is done before it.
2. Administrators (三员) never decide: POSTs to the decision endpoints are refused with 403
   before the view runs — for pages and for the API (bearer tokens), whatever memberships the
   account might have been given by mistake. The system administrator's 作废 through the API
   stays possible (the engine allows only them to void).
"""
from __future__ import annotations

from datetime import datetime, time, timezone

from flask import (Blueprint, Flask, abort, current_app, flash, g, jsonify, redirect, render_template,
                   request, session, url_for)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, StringField, TimeField
from wtforms.validators import DataRequired, Length, Optional

from ..container import services
from ..models import User
from ..services import accounts, second_factor, security, substitutions, tokens
from .auth import policy
from .current import me
from .labels import SHANGHAI
from .pages import tr

bp = Blueprint("security", __name__, url_prefix="/security")

# Pages a person may still use while a requirement is pending.
ALWAYS = {"static", "auth.logout", "auth.set_locale", "auth.login", "auth.login_code"}
FIRST = {security.PASSWORD_CHANGE: {"auth.change_password"},
         security.PASSWORD_EXPIRED: {"auth.change_password"},
         security.TOTP_ENROLMENT: {"security.totp", "auth.change_password"}}
WHERE = {security.PASSWORD_CHANGE: "auth.change_password", security.PASSWORD_EXPIRED: "auth.change_password",
         security.TOTP_ENROLMENT: "security.totp"}
MESSAGES = {security.PASSWORD_CHANGE: ("请先修改初始密码", "Please change your initial password first"),
            security.PASSWORD_EXPIRED: ("密码已超过有效期，请先修改密码", "Your password has expired; change it first"),
            security.TOTP_ENROLMENT: ("您的账户须启用动态验证码（双因素），请先完成绑定",
                                      "Your account needs a second factor: set up your authenticator app first")}
# Where a decision is taken: refused for administrators (三员分立).
DECISION_PAGES = {"instances.act", "inbox.bulk_approve", "start.start"}
DECISION_API = {"api_instances.act", "api_instances.start"}


def register(app: Flask) -> None:
    from . import security_admin  # noqa: F401  (its routes join `bp`)

    app.register_blueprint(bp)
    app.before_request(_gate)


def _gate():
    endpoint = request.endpoint or ""
    if request.path.startswith("/api/"):
        return _api_gate(endpoint)
    if endpoint in ("static",) or not current_user.is_authenticated:
        return None
    pending = g.get("security_requirement")
    if pending and endpoint not in ALWAYS | FIRST[pending]:
        if request.method in ("GET", "HEAD"):
            flash(tr(*MESSAGES[pending]), "warning")
            return redirect(url_for(WHERE[pending]))
        g.refusal_reason = pending
        abort(403)
    if current_user.admin_role and endpoint in DECISION_PAGES and request.method == "POST":
        g.refusal_reason = "administrator_decides"
        abort(403)
    return None


def _api_gate(endpoint: str):
    if endpoint not in DECISION_API or request.method != "POST":
        return None
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None  # the API's own authentication answers 401
    svc = services()
    token = header[7:].strip()
    try:
        with svc.db.peek() as s:  # one statement, no transaction around it on PostgreSQL
            who = tokens.identify(s, token, now=svc.clock())
    except tokens.TokenRefused:
        return None
    g.api_token_identity = (token, who)  # the API's authentication reuses it (api/auth.py)
    if not who.admin_role:
        return None
    body = request.get_json(silent=True) or {}
    if who.admin_role == "system" and endpoint == "api_instances.act" and body.get("action") == "void":
        return None
    g.flask_httpauth_user = who
    from . import log_refusal
    log_refusal("access_denied", "administrator_decides")
    return jsonify(error="forbidden", message="administrators do not decide (三员分立)",
                   details={"reason": "administrator"}), 403


def _ip() -> str:
    return (request.remote_addr or "")[:64]


# ---------------------------------------------------------------- overview
@bp.get("/")
@login_required
def index():
    return render_template("security/index.html", user=me())


# ---------------------------------------------------------------- my sessions
class HandleForm(FlaskForm):
    handle = StringField(validators=[DataRequired(), Length(min=12, max=12)])


@bp.get("/sessions")
@login_required
def sessions():
    user = me()
    svc = services()
    with svc.db.read() as s:
        rows = security.live_sessions(s, s.get(User, user.id), now=svc.clock(), policy=policy(s),
                                      current_id=user.session_id)
    return render_template("security/sessions.html", rows=rows, form=HandleForm(formdata=None))


@bp.post("/sessions/end")
@login_required
def end_session():
    user = me()
    form = HandleForm()
    if not form.validate_on_submit():
        abort(400)
    svc = services()
    with svc.db.write() as s:
        ended = security.end_own_session(s, s.get(User, user.id), form.handle.data, now=svc.clock(), ip=_ip())
    if not ended:
        abort(404)
    if user.session_id.startswith(form.handle.data):
        session.clear()
        return redirect(url_for("auth.login"))
    flash(tr("已结束该会话", "Session ended"), "success")
    return redirect(url_for(".sessions"))


# ---------------------------------------------------------------- second factor
class CodeForm(FlaskForm):
    code = StringField(validators=[DataRequired(), Length(max=16)])


@bp.route("/totp", methods=["GET", "POST"])
@login_required
def totp():
    """Enrol (or see the state of) the second factor. The secret waits, sealed, in the cookie
    until a code proves the app has it; only then is it stored."""
    user = me()
    svc = services()
    key = current_app.secret_key
    form = CodeForm()
    error = None
    with svc.db.read() as s:
        row = s.get(User, user.id)
        enrolled, required = bool(row.totp_secret), security.needs_second_factor(row)
    if enrolled:
        return render_template("security/totp.html", enrolled=True, required=required, form=form)
    raw = _pending_secret(user.id, key)
    if form.validate_on_submit():
        with svc.db.write() as s:
            done = second_factor.enrol(s, s.get(User, user.id), raw, form.code.data, svc.clock(), key, ip=_ip())
        if done:
            session.pop("totp_pending", None)
            flash(tr("动态验证码已启用，下次登录时需要输入", "Second factor enabled: you will be asked for a code at sign-in"),
                  "success")
            return redirect(url_for(".index"))
        error = tr("验证码不正确，请核对手机时间后重试", "The code is not right; check your phone's clock and retry")
    return render_template("security/totp.html", enrolled=False, required=required, form=form, error=error,
                           secret=second_factor.as_text(raw), uri=second_factor.provisioning_uri(raw, user.username)), \
        422 if error else 200


def _pending_secret(user_id: int, key: str) -> bytes:
    sealed = session.get("totp_pending")
    if sealed:
        try:
            return second_factor.unseal(sealed, user_id, key)
        except second_factor.SealError:
            pass
    raw = second_factor.new_secret()
    session["totp_pending"] = second_factor.seal(raw, user_id, key)
    return raw


@bp.post("/totp/remove")
@login_required
def totp_remove():
    """Turn off an optional second factor (a current code is needed); required ones stay."""
    user = me()
    form = CodeForm()
    svc = services()
    if not form.validate_on_submit():
        abort(400)
    with svc.db.write() as s:
        row = s.get(User, user.id)
        if security.needs_second_factor(row) or not row.totp_secret:
            abort(403)
        if second_factor.verify(s, row, form.code.data, svc.clock(), current_app.secret_key) is None:
            accounts.log(s, "totp_remove_failed", now=svc.clock(), user=row, ip=_ip(), outcome="refused")
            ok = False
        else:
            second_factor.remove(s, row, svc.clock(), by=row, ip=_ip())
            ok = True
    flash(tr("已关闭动态验证码", "Second factor turned off") if ok else tr("验证码不正确", "Wrong code"),
          "success" if ok else "error")
    return redirect(url_for(".totp"))


# ---------------------------------------------------------------- stand-ins
class StandInForm(FlaskForm):
    substitute = StringField(validators=[DataRequired(), Length(max=64)])
    start_date = DateField(validators=[DataRequired()])
    start_time = TimeField(validators=[Optional()])
    end_date = DateField(validators=[DataRequired()])
    end_time = TimeField(validators=[Optional()])
    reason = StringField(validators=[Optional(), Length(max=substitutions.MAX_REASON)])


def _instant(day, at) -> datetime:
    """A date and time typed in Shanghai time, as a UTC instant."""
    return datetime.combine(day, at or time(0, 0), SHANGHAI).astimezone(timezone.utc)


@bp.route("/substitutions", methods=["GET", "POST"])
@login_required
def substitutions_page():
    user = me()
    svc = services()
    form = StandInForm()
    error = None
    if form.validate_on_submit():
        try:
            with svc.db.write() as s:
                substitutions.name_stand_in(
                    s, s.get(User, user.id), form.substitute.data,
                    _instant(form.start_date.data, form.start_time.data),
                    _instant(form.end_date.data, form.end_time.data or time(23, 59)),
                    form.reason.data or "", now=svc.clock(), ip=_ip())
        except substitutions.SubstitutionRefused as refused:
            error = str(refused)
        else:
            flash(tr("已指定代理人", "Stand-in named"), "success")
            return redirect(url_for(".substitutions_page"))
    elif form.is_submitted():
        error = tr("请填写代理人和起止日期", "Give the stand-in and the dates")
    now = svc.clock()
    with svc.db.read() as s:
        rows = substitutions.involving(s, user.id, now=now)
        covering = substitutions.tasks_to_cover(s, user.id, now=now)
    return render_template("security/substitutions.html", form=form, rows=rows, now=now, user=user,
                           covering=covering,
                           error=error, end_form=FlaskForm(formdata=None)), 422 if error else 200


@bp.post("/substitutions/<int:sid>/end")
@login_required
def substitution_end(sid: int):
    user = me()
    svc = services()
    if not FlaskForm().validate_on_submit():
        abort(400)
    with svc.db.write() as s:
        ended = substitutions.end_early(s, s.get(User, user.id), sid, now=svc.clock(), ip=_ip())
    if not ended:
        abort(404)
    flash(tr("代理已结束", "Stand-in ended"), "success")
    return redirect(url_for(".substitutions_page"))
