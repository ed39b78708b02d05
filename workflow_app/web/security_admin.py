"""The three administrators' pages under `/security` (三员分立; the rules themselves live in
services/administration.py and are checked there too):

- `/security/users` — system administrator: accounts (create, disable / enable, reset password).
- `/security/access`, `/security/policy` — security administrator: memberships, locks, second
  factors, the policy.
- `/security/log` — audit administrator: the security log, read-only (the decision trail is read
  in the compliance console, `/compliance`).

Anyone else gets 403; an id that does not exist gets 404. A one-time password is shown once, on
the page that answers the POST, and never stored in clear.
"""
from __future__ import annotations

from dataclasses import asdict

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..container import services
from ..models import User
from ..services import administration as admin
from ..services import security
from ..services.administration import AdminRefused
from .auth import policy
from .current import require_admin
from .labels import SHANGHAI
from .pages import tr
from .security import _ip, bp


def _user(s, uid: int) -> User:
    row = s.get(User, uid)
    if row is None:
        abort(404)
    return row


# ---------------------------------------------------------------- system administrator
class NewUserForm(FlaskForm):
    username = StringField(validators=[DataRequired(), Length(min=2, max=64)])
    display_name = StringField(validators=[DataRequired(), Length(max=100)])
    email = StringField(validators=[Optional(), Length(max=200)])


@bp.route("/users", methods=["GET", "POST"])
@login_required
def users():
    me = require_admin("system")
    svc = services()
    form = NewUserForm()
    error = shown = None
    if form.validate_on_submit():
        try:
            with svc.db.write() as s:
                created, password = admin.create_user(
                    s, s.get(User, me.id), form.username.data, form.display_name.data, now=svc.clock(),
                    policy=policy(s), email=form.email.data or None, ip=_ip())
                shown = (created.username, password)
        except AdminRefused as refused:
            error = str(refused)
    elif form.is_submitted():
        error = tr("请填写用户名和姓名", "Give a user name and a name")
    q = (request.args.get("q") or "").strip()[:64] or None
    with svc.db.read() as s:
        rows = admin.users(s, search=q)
    return render_template("security/users.html", rows=rows, form=form, error=error, shown=shown, q=q or "",
                           action_form=FlaskForm(formdata=None), now=svc.clock()), 422 if error else 200


@bp.post("/users/<int:uid>/active")
@login_required
def user_active(uid: int):
    me = require_admin("system")
    if not FlaskForm().validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    svc = services()
    try:
        with svc.db.write() as s:
            _user(s, uid)
            admin.set_active(s, s.get(User, me.id), uid, active, now=svc.clock(), ip=_ip())
    except AdminRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for(".users")), 303
    flash(tr("已启用该账户", "Account enabled") if active else tr("已停用该账户，其会话已结束", "Account disabled; its sessions ended"),
          "success")
    return redirect(url_for(".users"))


@bp.post("/users/<int:uid>/reset-password")
@login_required
def user_reset(uid: int):
    me = require_admin("system")
    if not FlaskForm().validate_on_submit():
        abort(400)
    svc = services()
    try:
        with svc.db.write() as s:
            target = _user(s, uid)
            password = admin.reset_password(s, s.get(User, me.id), uid, now=svc.clock(), policy=policy(s), ip=_ip())
            shown = (target.username, password)
    except AdminRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for(".users")), 303
    with svc.db.read() as s:
        rows = admin.users(s)
    return render_template("security/users.html", rows=rows, form=NewUserForm(formdata=None), error=None,
                           shown=shown, q="", action_form=FlaskForm(formdata=None), now=svc.clock())


# ---------------------------------------------------------------- security administrator
class MembershipsForm(FlaskForm):
    memberships = TextAreaField(validators=[Optional(), Length(max=2000)])


@bp.get("/access")
@login_required
def access():
    require_admin("security")
    svc = services()
    q = (request.args.get("q") or "").strip()[:64] or None
    with svc.db.read() as s:
        rows = admin.users(s, search=q)
    org = svc.store.organisation
    return render_template("security/access.html", rows=rows, q=q or "", now=svc.clock(),
                           action_form=FlaskForm(formdata=None), departments=sorted(org.departments),
                           roles=sorted(org.roles))


@bp.post("/access/<int:uid>/memberships")
@login_required
def access_memberships(uid: int):
    """Memberships as lines `department/role` (the page fills in the current ones)."""
    me = require_admin("security")
    form = MembershipsForm()
    if not form.validate_on_submit():
        abort(400)
    wanted = []
    for line in (form.memberships.data or "").splitlines():
        if line.strip():
            department, _, role = line.strip().partition("/")
            wanted.append((department, role))
    svc = services()
    org = svc.store.organisation
    try:
        with svc.db.write() as s:
            _user(s, uid)
            added, removed = admin.set_memberships(
                s, s.get(User, me.id), uid, wanted, known_departments=set(org.departments),
                known_roles=set(org.roles), now=svc.clock(), ip=_ip())
    except AdminRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for(".access")), 303
    flash(tr(f"已更新身份：新增 {len(added)}，撤销 {len(removed)}", f"Memberships: {len(added)} added, {len(removed)} removed"),
          "success")
    return redirect(url_for(".access"))


@bp.post("/access/<int:uid>/unlock")
@login_required
def access_unlock(uid: int):
    me = require_admin("security")
    if not FlaskForm().validate_on_submit():
        abort(400)
    svc = services()
    with svc.db.write() as s:
        _user(s, uid)
        admin.unlock(s, s.get(User, me.id), uid, now=svc.clock(), ip=_ip())
    flash(tr("已解除锁定", "Account unlocked"), "success")
    return redirect(url_for(".access"))


@bp.post("/access/<int:uid>/second-factor")
@login_required
def access_second_factor(uid: int):
    me = require_admin("security")
    if not FlaskForm().validate_on_submit():
        abort(400)
    svc = services()
    try:
        with svc.db.write() as s:
            _user(s, uid)
            admin.remove_second_factor(s, s.get(User, me.id), uid, now=svc.clock(), ip=_ip())
    except AdminRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for(".access")), 303
    flash(tr("已重置动态验证码，该用户下次登录时重新绑定", "Second factor reset: the user enrols again at next sign-in"),
          "success")
    return redirect(url_for(".access"))


class PolicyForm(FlaskForm):
    pass


for _name, (_low, _high) in security.BOUNDS.items():
    setattr(PolicyForm, _name, IntegerField(validators=[DataRequired(), NumberRange(min=_low, max=_high)]))


@bp.route("/policy", methods=["GET", "POST"])
@login_required
def policy_page():
    me = require_admin("security")
    svc = services()
    with svc.db.read() as s:
        current = policy(s)
    form = PolicyForm(data=asdict(current))
    error = None
    if form.validate_on_submit():
        try:
            with svc.db.write() as s:
                security.set_policy(s, current, {n: getattr(form, n).data for n in security.BOUNDS},
                                    by=s.get(User, me.id), now=svc.clock(), ip=_ip())
        except ValueError as exc:
            error = str(exc)
        else:
            current_app.extensions["parkflow.policy"].forget()
            flash(tr("策略已保存", "Policy saved"), "success")
            return redirect(url_for(".policy_page"))
    elif form.is_submitted():
        error = tr("有设置超出允许范围（不得低于等保三级要求）", "A setting is out of range (no weaker than MLPS level 3)")
    return render_template("security/policy.html", form=form, bounds=security.BOUNDS, labels=security.LABELS,
                           error=error, retention=int(current_app.config.get("LOG_RETENTION_DAYS", 185))), \
        422 if error else 200


# ---------------------------------------------------------------- audit administrator
class LogForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: bookmarkable, changes nothing

    event = StringField(validators=[Optional(), Length(max=40)])
    username = StringField(validators=[Optional(), Length(max=64)])
    outcome = SelectField(choices=[SelectChoice("", "全部 / all"), SelectChoice("ok", "ok"),
                                   SelectChoice("refused", "refused"), SelectChoice("error", "error")],
                          validators=[Optional()])
    date_from = DateField(validators=[Optional()])
    date_to = DateField(validators=[Optional()])
    before = IntegerField(validators=[Optional(), NumberRange(min=1, max=2**62)])


@bp.get("/log")
@login_required
def log_page():
    me = require_admin("audit")
    form = LogForm(request.args)
    svc = services()
    rows, more = [], False
    error = None
    if form.validate():
        with svc.db.read() as s:
            rows = admin.security_log(s, s.get(User, me.id), admin.LogQuery(
                event=form.event.data or None, username=form.username.data or None,
                outcome=form.outcome.data or None, date_from=form.date_from.data, date_to=form.date_to.data,
                before_id=form.before.data), tz=SHANGHAI)
        more = len(rows) > admin.LOG_PAGE
        rows = rows[:admin.LOG_PAGE]
    else:
        error = tr("查询条件有误", "The filter is not valid")
    args = {k: v for k, v in request.args.items() if k != "before"}
    return render_template("security/log.html", form=form, rows=rows, more=more, error=error,
                           next_args={**args, "before": rows[-1].id} if more and rows else None), 422 if error else 200
