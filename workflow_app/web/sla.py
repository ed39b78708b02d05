"""时限监督 (`/sla`): time-limit compliance for the coordinating bodies — per department and per
process, tasks finished within their limit, late, overdue now (red card), due within N working
days (yellow card), average working days per step, with ECharts charts and an XLSX export.

Who: members of the coordinating body (区经信局), department heads, compliance reviewers and the
audit administrator (`sla_report.may_view`); everyone else gets 403. The charts' data sits in a
`<script type="application/json">` block read by static/js/sla.js (CSP: script-src 'self').
Exports are written to the security log like the compliance console's.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, render_template, request
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField
from wtforms.validators import NumberRange, Optional, ValidationError

from ..container import services
from ..engine.errors import NotFound
from ..models import User
from ..services import accounts, sla_report
from . import labels
from .current import SignedIn, me
from .pages import tr

bp = Blueprint("sla", __name__, url_prefix="/sla")


class ReportForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: bookmarkable, changes nothing

    date_from = DateField(validators=[Optional()])
    date_to = DateField(validators=[Optional()])
    process_key = SelectField(choices=[], validate_choice=True, validators=[Optional()])
    yellow = IntegerField(validators=[Optional(), NumberRange(min=1, max=30)])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(tr("结束日期早于开始日期", "The end date is before the start date"))


def _viewer() -> SignedIn:
    user = me()
    if not sla_report.may_view(user.memberships, user.admin_role, services().store.organisation):
        abort(403)
    return user


def _report(s, form: ReportForm) -> sla_report.Report:
    svc = services()
    now = svc.clock()
    today = svc.workflow.working_calendar(s).local_date(now) if svc.workflow.calendar else now.date()
    form.date_from.data = form.date_from.data or date(today.year, 1, 1)
    form.date_to.data = form.date_to.data or today
    form.yellow.data = form.yellow.data or 3

    def spec(definition_id: int):
        try:
            return svc.store.spec(s, definition_id)
        except NotFound:
            return None

    return sla_report.build(s, calendar=svc.workflow.working_calendar(s) or svc.calendar,
                            org=svc.store.organisation, specs=spec, now=now,
                            date_from=form.date_from.data, date_to=form.date_to.data,
                            yellow_days=form.yellow.data, process_key=form.process_key.data or None)


def _form(s) -> ReportForm:
    from ..services import compliance

    form = ReportForm(request.args)
    form.process_key.choices = [("", tr("全部流程", "All processes"))] + [
        (k, zh) for k, zh, _en in compliance.process_keys(s)]
    return form


def _args(form: ReportForm) -> dict:
    out = {"date_from": form.date_from.data.isoformat(), "date_to": form.date_to.data.isoformat(),
           "yellow": form.yellow.data}
    if form.process_key.data:
        out["process_key"] = form.process_key.data
    return out


@bp.get("/")
@login_required
def index():
    _viewer()
    with services().db.read() as s:
        form = _form(s)
        if not form.validate():
            return render_template("sla/index.html", form=form, report=None, charts=None, args={}), 400
        report = _report(s, form)
    return render_template("sla/index.html", form=form, report=report,
                           charts=sla_report.charts(report), args=_args(form))


@bp.get("/export.xlsx")
@login_required
def export():
    user = _viewer()
    svc = services()
    now = svc.clock()
    with svc.db.read() as s:
        form = _form(s)
        if not form.validate():
            abort(400)
        report = _report(s, form)
    data = sla_report.to_xlsx(report, exported_by=f"{user.display_name}（{user.username}）", exported_at=now)
    with svc.db.write() as s:
        accounts.log(s, "export", now=now, user=s.get(User, user.id), ip=(request.remote_addr or "")[:64],
                     kind="sla_xlsx", criteria=_args(form), bytes=len(data))
    response = Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response.headers["Content-Disposition"] = f'attachment; filename="parkflow-sla-{labels.local(now):%Y%m%d%H%M}.xlsx"'
    response.headers["Cache-Control"] = "no-store"
    return response
