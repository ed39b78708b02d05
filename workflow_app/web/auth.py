"""Sign in, sign out, choose the role you act in, change your password, switch language."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from werkzeug.security import check_password_hash
from wtforms.validators import DataRequired, Length

from ..container import services
from ..extensions import limiter, login_manager
from ..models import LoginSession, User
from ..services import accounts
from .current import SignedIn, me

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired(), Length(max=128)])


class PasswordForm(FlaskForm):
    current = PasswordField("当前密码", validators=[DataRequired(), Length(max=128)])
    new = PasswordField("新密码", validators=[DataRequired(), Length(max=128)])
    confirm = PasswordField("确认新密码", validators=[DataRequired(), Length(max=128)])


@login_manager.user_loader
def load_user(session_id: str) -> SignedIn | None:
    svc = services()
    with svc.db.write() as s:
        found = accounts.resume(s, session_id, now=svc.clock(), policy=svc.policy)
        if found is None:
            return None
        user, row = found
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
        row = None
        with svc.db.write() as s:  # commits on refusal too: failures and locks are recorded
            try:
                _user, row = accounts.authenticate(
                    s, form.username.data.strip(), form.password.data, now=svc.clock(),
                    ip=request.remote_addr or "", user_agent=request.user_agent.string,
                    policy=svc.policy)
            except accounts.LoginRefused as refused:
                error = refused.message
        if row is not None:
            session.clear()  # no fixation: a fresh cookie for the new session
            login_user(load_user(row.id))
            return redirect(_safe_next() or url_for("inbox.index"))
    return render_template("auth/login.html", form=form, error=error), 401 if error else 200


def _safe_next() -> str | None:
    target = request.args.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else None


@bp.post("/logout")
def logout():
    user = me()
    svc = services()
    with svc.db.write() as s:
        accounts.end_session(s, user.session_id, now=svc.clock(), by=s.get(User, user.id))
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.post("/act-as")
def act_as():
    user = me()
    department, role = request.form.get("department", ""), request.form.get("role", "")
    if not user.holds(department, role):
        flash(_("您不在该部门担任该角色"), "error")
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
def change_password():
    user = me()
    form = PasswordForm()
    error = None
    if form.validate_on_submit():
        svc = services()
        if form.new.data != form.confirm.data:
            error = "两次输入的新密码不一致"
        else:
            try:
                with svc.db.write() as s:
                    row = s.get(User, user.id)
                    if not check_password_hash(row.password_hash, form.current.data):
                        raise ValueError("当前密码不正确")
                    accounts.set_password(row, form.new.data, svc.clock(), policy=svc.policy)
                    accounts.log(s, "password_changed", now=svc.clock(), user=row, ip=request.remote_addr or "")
            except ValueError as exc:
                error = str(exc)
            else:
                flash("密码已修改", "success")
                return redirect(url_for("inbox.index"))
    return render_template("auth/password.html", form=form, error=error)
