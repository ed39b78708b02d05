"""发起: the processes a submitter can start (`/processes`) and the form generated from a
definition's fields (`/processes/<key>/start`). The engine validates; its per-field messages are
shown beside the inputs."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectChoice, SelectField

from ..container import services
from ..engine.errors import ActionError, InvalidAction, NotFound
from ..models import ProcessDefinition
from ..services import attachments
from . import fields as field_forms
from . import labels
from .current import SignedIn, me
from .messages import action_message
from .pages import tr

bp = Blueprint("start", __name__)


class StartForm(FlaskForm):
    department = SelectField(validate_choice=True)


def _submitter_units(user: SignedIn) -> list[str]:
    return [d for d, r in user.memberships if r == "submitter"]


@bp.get("/processes")
@login_required
def index():
    user = me()
    svc = services()
    with svc.db.read() as s:
        rows = s.scalars(select(ProcessDefinition).where(ProcessDefinition.is_latest.is_(True))
                         .order_by(ProcessDefinition.key)).all()
        specs = [(row, svc.store.spec(s, row.id)) for row in rows] if _submitter_units(user) else []
    return render_template("start/index.html", specs=specs, can_start=bool(_submitter_units(user)))


@bp.route("/processes/<key>/start", methods=["GET", "POST"])
@login_required
def start(key: str):
    user = me()
    units = _submitter_units(user)
    if not units:
        abort(403)
    svc = services()
    with svc.db.read() as s:
        try:
            _definition_id, spec = svc.store.latest(s, key)
        except NotFound:
            abort(404)
    names = [f.name for f in spec.fields]
    wrapper = StartForm()
    wrapper.department.choices = [SelectChoice(d, _unit_name(d)) for d in units]
    if wrapper.department.data is None:
        acting = user.acting_department if user.acting_department in units else units[0]
        wrapper.department.data = acting
    form = field_forms.field_form(spec, names, svc.store.organisation)
    errors: dict[str, str] = {}
    if wrapper.validate_on_submit():
        try:
            # The files are checked before the transaction; stored in it, with the start event
            # naming each one (field, name, size, sha256): one action, one transaction.
            files = attachments.check_uploads(attachments.Policy.from_config(current_app.config), spec,
                                              field_forms.uploads(spec, names), names)
            data = attachments.with_files(field_forms.submitted(form, names), files)
            with svc.db.write() as s:
                result = svc.workflow.start(s, user.id, key, data, department=wrapper.department.data,
                                            trail_details=attachments.trail_details(files))
                attachments.save(s, result.instance_id, result.trail_event_id, user.id, files, svc.clock())
        except InvalidAction as err:
            errors = field_forms.errors_from(err.details)
            flash(tr("表单有误，请检查标出的字段", "The form has errors; see the marked fields")
                  if errors else action_message(err), "error")
        except ActionError as err:
            flash(action_message(err), "error")
        else:
            flash(tr("已提交，等待审批", "Submitted for approval"), "success")
            return redirect(url_for("instances.detail", iid=result.instance_id))
    elif wrapper.is_submitted():
        flash(tr("请选择以哪个单位发起", "Choose the unit you submit for"), "error")
    status = 422 if wrapper.is_submitted() else 200
    return render_template("start/form.html", spec=spec, key=key, wrapper=wrapper,
                           fields=field_forms.shown(form, spec, names, errors),
                           upload_rules=field_forms.upload_rules() if field_forms.has_files(spec, names) else ""), status


def _unit_name(code: str) -> str:
    dept = services().store.organisation.departments.get(code)
    return labels.text(dept.name) if dept else code
