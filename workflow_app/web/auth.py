"""Sign in (password, then a TOTP code for those who enrolled one), sign out, choose the role you
act in, change your password, switch language.

Between the two factors nothing is signed in: the cookie carries only which account passed the
password and when (`login_pending`, five minutes); the server-side session is opened after the
code. Wrong codes count towards the same lock as wrong passwords.
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length
from sqlalchemy import select

from ..container import services
from ..extensions import limiter, login_manager
from ..models import LoginSession, User
from ..services import accounts, second_factor, security
from .current import SignedIn, me
from .pages import tr

PENDING_SECONDS = 300

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired(), Length(max=128)])


class CodeForm(FlaskForm):
    code = StringField("动态验证码", validators=[DataRequired(), Length(max=16)])


class PasswordForm(FlaskForm):
    current = PasswordField("当前密码", validators=[DataRequired(), Length(max=128)])
    new = PasswordField("新密码", validators=[DataRequired(), Length(max=128)])
    confirm = PasswordField("确认新密码", validators=[DataRequired(), Length(max=128)])


def policy(s) -> accounts.Policy:
    """The policy in force (configuration tightened by the security administrator), cached."""
    cache = current_app.extensions.get("parkflow.policy")
    if cache is None:
        cache = current_app.extensions["parkflow.policy"] = security.PolicyCache(services().policy)
    return cache.get(s)


def second_factor_enforced() -> bool:
    return bool(current_app.config.get("SECOND_FACTOR_ENFORCED", not current_app.testing))


@login_manager.user_loader
def load_user(session_id: str) -> SignedIn | None:
    svc = services()
    with svc.db.write() as s:
        now = svc.clock()
        rules = policy(s)
        found = accounts.resume(s, session_id, now=now, policy=rules)
        if found is None:
            return None
        user, row = found
        # What this person must do before anything else (web/security.py's gate reads it).
        g.security_requirement = security.requirement(user, now, rules,
                                                      enforce_second_factor=second_factor_enforced())
        return SignedIn(id=user.id, username=user.username, display_name=user.display_name,
                        admin_role=user.admin_role,
                        memberships=tuple((m.department_code, m.role) for m in
                                          sorted(user.memberships, key=lambda m: (m.rank, m.id))),
                        session_id=row.id, acting_department=row.acting_department,
                        acting_role=row.acting_role, must_change_password=user.must_change_password)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        svc = services()
        row = pending = None
        with svc.db.write() as s:  # commits on refusal too: failures and locks are recorded
            now, ip = svc.clock(), request.remote_addr or ""
            try:
                user = accounts.check_password(s, form.username.data.strip(), form.password.data,
                                               now=now, ip=ip, policy=policy(s))
                if user.totp_secret:
                    pending = {"uid": user.id, "at": now.timestamp()}
                else:
                    row = accounts.open_session(s, user, now=now, ip=ip,
                                                user_agent=request.user_agent.string)
            except accounts.LoginRefused as refused:
                error = refused.message
        if pending is not None:
            session.clear()
            session["login_pending"] = pending
            return redirect(url_for("auth.login_code", next=_safe_next()))
        if row is not None:
            return _signed_in(row.id)
    return render_template("auth/login.html", form=form, error=error), 401 if error else 200


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def login_code():
    """The second step: a TOTP code from the app the person enrolled."""
    svc = services()
    now = svc.clock()
    pending = session.get("login_pending")
    if not isinstance(pending, dict) or not isinstance(pending.get("uid"), int) or \
            not 0 <= now.timestamp() - float(pending.get("at", 0)) <= PENDING_SECONDS:
        session.pop("login_pending", None)
        flash(tr("请重新输入用户名和密码", "Enter your user name and password again"), "warning")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    error = None
    row = None
    if form.validate_on_submit():
        with svc.db.write() as s:  # commits on refusal too: failures and locks are recorded
            ip = request.remote_addr or ""
            user = s.scalar(select(User).where(User.id == pending["uid"]).with_for_update())
            try:
                if user is None or not user.is_active or not user.totp_secret:
                    raise accounts.LoginRefused("请重新登录", "gone")
                accounts.check_lock(s, user, now=now, ip=ip)
                step = second_factor.verify(s, user, form.code.data, now, current_app.secret_key)
                if step is None:
                    accounts.register_failure(s, user, now=now, ip=ip, policy=policy(s), reason="totp")
                row = accounts.open_session(s, user, now=now, ip=ip, user_agent=request.user_agent.string,
                                            second_factor="totp", totp_step=step)
            except accounts.LoginRefused as refused:
                error = refused.message
                if refused.reason in ("locked", "gone"):
                    session.pop("login_pending", None)
        if row is not None:
            return _signed_in(row.id)
    return render_template("security/login_code.html", form=form, error=error), 401 if error else 200


def _signed_in(session_id: str):
    target = _safe_next()
    session.clear()  # no fixation: a fresh cookie for the new session
    login_user(load_user(session_id))
    return redirect(target or url_for("inbox.index"))


def _safe_next() -> str | None:
    target = request.args.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else None


@bp.post("/logout")
def logout():
    user = me()
    svc = services()
    with svc.db.write() as s:
        accounts.end_session(s, user.session_id, now=svc.clock(), by=s.get(User, user.id),
                             ip=request.remote_addr or "")
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.post("/act-as")
def act_as():
    user = me()
    department, role = request.form.get("department", ""), request.form.get("role", "")
    if not user.holds(department, role):
        flash(tr("您不在该部门担任该角色", "You do not hold that role in that department"), "error")
        return redirect(request.referrer or url_for("inbox.index"))
    svc = services()
    with svc.db.write() as s:
        row = s.get(LoginSession, user.session_id)
        row.acting_department, row.acting_role = department, role
    return redirect(_safe_referrer() or url_for("inbox.index"))


def _safe_referrer() -> str | None:
    ref = request.referrer or ""
    host = request.host_url
    return ref if ref.startswith(host) else None


@bp.post("/locale/<code>")
def set_locale(code: str):
    if code in ("zh_Hans_CN", "en"):
        session["locale"] = code
    return redirect(_safe_referrer() or url_for("inbox.index"))


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def change_password():
    user = me()
    form = PasswordForm()
    error = None
    locked_out = False
    if form.validate_on_submit():
        svc = services()
        if form.new.data != form.confirm.data:
            error = "两次输入的新密码不一致"
        else:
            try:
                with svc.db.write() as s:  # commits a wrong current password too: it counts
                    row = s.scalar(select(User).where(User.id == user.id).with_for_update())
                    now, ip = svc.clock(), request.remote_addr or ""
                    try:
                        # A stolen session must not become a password-guessing oracle: a wrong
                        # current password counts towards the lock like a failed login.
                        accounts.check_current_password(s, row, form.current.data, now=now, ip=ip,
                                                        policy=policy(s))
                    except accounts.LoginRefused as refused:
                        error = "当前密码不正确" if refused.reason == "bad_credentials" else refused.message
                        locked_out = refused.reason == "locked_out"
                    else:
                        accounts.set_password(row, form.new.data, now, policy=policy(s))
                        accounts.log(s, "password_changed", now=now, user=row, ip=ip)
                        # a changed password ends every other session (a thief's copy among them)
                        security.revoke_all(s, row.id, now=now, keep=user.session_id)
            except ValueError as exc:
                error = str(exc)
            else:
                if locked_out:  # the lock ended every session, this one too
                    logout_user()
                    session.clear()
                    flash(error, "error")
                    return redirect(url_for("auth.login"))
                if error is None:
                    flash(tr("密码已修改", "Password changed"), "success")
                    return redirect(url_for("inbox.index"))
    return render_template("auth/password.html", form=form, error=error), 422 if error else 200
