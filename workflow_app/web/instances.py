"""One application (`/instances/<id>`): its form data, where it is and who must act, the diagram,
the timeline of every decision, and the action panel — plus the POST that performs an action.

What the panel offers is worked out with the engine's own checks (`Runtime.may_decide`), but the
service decides for real when the action is posted: the page may be stale, the rules are not.
Strangers get 404 (not 403), so application ids cannot be probed.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional

from ..container import services
from ..engine.clock_actions import MAX_EXTENSION_DAYS
from ..engine.diagram import mermaid
from ..engine.errors import ActionError, Conflict, Forbidden, InvalidAction, NotFound
from ..engine.runtime import MAX_OPINION, Request
from ..models import ProcessInstance, Task
from ..services import attachments, queries, substitutions
from ..services.directory import load_actor
from . import fields as field_forms
from . import labels
from .current import SignedIn, me
from .messages import translated
from .pages import tr
from .panel import ActionPanel, build_panel, people_choices
from .portfolio import instance_evidence
from .timeline import build_timeline, form_rows, waiting_on

bp = Blueprint("instances", __name__)

TASK_ACTIONS = ("approve", "reject", "submit", "return", "transfer", "delegate", "resolve",
                "add_signer", "claim", "release",
                "supplement", "pause", "resume", "request_extension", "grant_extension")  # the clock
INSTANCE_ACTIONS = ("withdraw", "comment", "cc", "urge", "remove_signer")
DONE_MESSAGES = {
    "approve": ("已同意", "Approved"), "reject": ("已拒绝", "Rejected"),
    "submit": ("已重新提交", "Resubmitted"), "return": ("已退回", "Returned"),
    "transfer": ("已转办", "Transferred"), "delegate": ("已委派", "Delegated"),
    "resolve": ("已提交委派意见", "Opinion sent"), "add_signer": ("已加签", "Signer added"),
    "remove_signer": ("已减签", "Signer removed"), "claim": ("已认领，请处理", "Claimed"),
    "release": ("已放回部门队列", "Released to the queue"), "withdraw": ("已撤回", "Withdrawn"),
    "comment": ("已评论", "Comment added"), "cc": ("已抄送", "Copied"), "urge": ("已催办", "Reminder sent"),
    "supplement": ("已要求补正，本环节计时暂停", "Supplements requested; the step's clock is stopped"),
    "pause": ("已暂停计时", "Clock stopped"), "resume": ("已恢复计时", "Clock restarted"),
    "request_extension": ("已申请延期，待部门负责人批准", "Extension requested; the department head decides"),
    "grant_extension": ("已批准延期", "Extension granted"),
}


class ActionForm(FlaskForm):
    action = HiddenField()
    task_id = IntegerField(validators=[Optional()])
    opinion = TextAreaField(validators=[Optional(), Length(max=MAX_OPINION)])
    target = StringField(validators=[Optional(), Length(max=64)])
    user = IntegerField(validators=[Optional()])
    users = SelectMultipleField(coerce=int, validate_choice=False)
    position = StringField(validators=[Optional(), Length(max=16)])  # before | after | alongside
    days = IntegerField(validators=[Optional(), NumberRange(1, MAX_EXTENSION_DAYS)])  # 延期: working days
    on_behalf_of = IntegerField(validators=[Optional()])             # 代为处理: the absent colleague
    capacity = StringField(validators=[Optional(), Length(max=130)])  # "department:role" chosen on the form


def capacity(user: SignedIn, department: str | None, role: str | None,
             chosen: str | None = None) -> tuple[str | None, str | None]:
    """The department and role the trail records for this action: the task's own when the user
    holds it (the task names who decides: a reviewer acting on a reviewer's task), else the
    capacity chosen on the action's form ("department:role"), else the one chosen in the
    header. A choice the user does not hold is ignored, never recorded."""
    if department and role and user.holds(department, role):
        return department, role
    if chosen and ":" in chosen:
        dept, _sep, held_role = chosen.partition(":")
        if user.holds(dept, held_role):
            return dept, held_role
    if user.acting_department and user.acting_role and user.holds(user.acting_department, user.acting_role):
        return user.acting_department, user.acting_role
    return None, None


def _load(s, iid: int, user: SignedIn) -> queries.InstanceView:
    try:
        return queries.instance_view(s, services().store, iid, user_id=user.id,
                                     memberships=user.memberships, admin_role=user.admin_role)
    except NotFound:
        pass
    for absent_id, _name in substitutions.standing_in_for(s, user.id, now=services().clock()):
        try:  # a stand-in sees what the colleague they stand in for sees, while the period runs
            _absent, absent = load_actor(s, absent_id)
            return queries.instance_view(s, services().store, iid, user_id=absent_id,
                                         memberships=absent.memberships, admin_role=None)
        except (NotFound, Forbidden):
            continue
    abort(404)


def _visible(s, user: SignedIn, instance: ProcessInstance | None, on_behalf_of: int | None) -> bool:
    """The person may see `instance` themselves, or as the stand-in of `on_behalf_of` now."""
    if instance is None:
        return False
    coordinators = frozenset(services().store.organisation.coordinators())
    if queries.can_view(s, user.id, user.memberships, user.admin_role, instance, coordinators):
        return True
    if on_behalf_of is None or on_behalf_of not in dict(
            substitutions.standing_in_for(s, user.id, now=services().clock())):
        return False
    try:
        _absent, absent = load_actor(s, on_behalf_of)
    except Forbidden:
        return False
    return queries.can_view(s, on_behalf_of, absent.memberships, None, instance, coordinators)


def _render(iid: int, *, form: ActionForm | None = None, task_id: int | None = None,
            field_errors: dict[str, str] | None = None, status: int = 200):
    user = me()
    svc = services()
    now = svc.clock()
    with svc.db.read() as s:
        view = _load(s, iid, user)
        panel: ActionPanel = build_panel(s, view, user, svc.store.organisation, now)
        timeline = build_timeline(s, view)
        waiting = waiting_on(view, now)
        people = people_choices(s, exclude={user.id, view.instance.submitter_id}) if panel.any_people else []
        files = attachments.for_instance(s, iid, view.instance.form_data)
    path = view.path_taken()
    start_step = view.spec.start_step.id
    if not path or path[0] != start_step:  # the start event records where it went, not whence
        path = [start_step, *path]
    diagram = mermaid(view.spec, current=view.instance.current_step, path=path,
                      english=labels.english(), returns=False)
    posted = form if form is not None else ActionForm(formdata=None)
    for decide in panel.decide:
        # the fields editable at this step, filled from the request when re-shown with errors
        data = None if (field_errors and decide.task.id == task_id) else view.instance.form_data
        decide.form = field_forms.field_form(view.spec, decide.editable, svc.store.organisation, data)
        decide.fields = field_forms.shown(decide.form, view.spec, decide.editable,
                                          field_errors if decide.task.id == task_id else None)
    return render_template(
        "instances/detail.html", view=view, inst=view.instance, spec=view.spec, panel=panel,
        timeline=timeline, waiting=waiting, diagram=diagram, people=people, form=posted,
        data_rows=form_rows(view.spec, view.instance.form_data, svc.store.organisation,
                            {f.sha256: f.filename for f in files}),
        files=files, field_labels={f.name: labels.text(f.label) for f in view.spec.fields},
        current_step=view.spec.steps.get(view.instance.current_step), now=now,
        park_evidence=instance_evidence(view.instance, user)), status


@bp.get("/instances/<int:iid>")
@login_required
def detail(iid: int):
    return _render(iid)


def _task_of(s, iid: int, task_id: int | None) -> Task | None:
    if task_id is None:
        return None
    task = s.get(Task, task_id)
    if task is None or task.instance_id != iid:
        raise Conflict("this task is no longer current: someone else has acted on the application")
    return task


@bp.post("/instances/<int:iid>/act")
@login_required
def act(iid: int):
    user = me()
    svc = services()
    form = ActionForm()
    if not form.validate_on_submit():
        flash(tr("提交的内容有误，请检查后重试", "The request was not valid; please check and retry"), "error")
        return redirect(url_for(".detail", iid=iid))
    action = form.action.data or ""
    with svc.db.read() as s:
        instance = s.get(ProcessInstance, iid)
        if not _visible(s, user, instance, form.on_behalf_of.data):
            abort(404)
        if form.on_behalf_of.data is None and not queries.takes_part(
                s, user.id, user.memberships, instance, frozenset(svc.store.organisation.coordinators())):
            # 合规审查 reads only (a stand-in's right to act was checked by `_visible` above)
            raise translated(Forbidden("compliance reviewers and auditors only read applications"))
        spec = svc.store.spec(s, instance.definition_id)
        if action not in TASK_ACTIONS + INSTANCE_ACTIONS and action not in spec.custom_triggers():
            flash(tr("未知操作", "Unknown action"), "error")
            return redirect(url_for(".detail", iid=iid))
        try:
            task = _task_of(s, iid, form.task_id.data)
        except ActionError as err:
            raise translated(err) from err
    data = None
    files: list[attachments.Checked] = []
    if task is not None and (action in ("approve", "reject", "submit") or action in spec.custom_triggers()):
        names = field_forms.editable_at(spec, task.step, resubmit=task.origin == "start")
        if names:
            fields_form = field_forms.field_form(spec, names, svc.store.organisation)
            data = field_forms.submitted(fields_form, names)
            try:
                files = attachments.check_uploads(attachments.Policy.from_config(current_app.config), spec,
                                                  field_forms.uploads(spec, names), names)
            except InvalidAction as err:
                flash(tr("表单有误，请检查标出的字段", "The form has errors; see the marked fields"), "error")
                return _render(iid, form=form, task_id=form.task_id.data,
                               field_errors=field_forms.errors_from(err.details), status=422)
            data = attachments.with_files(data, files)
    req = Request(action=action, task_id=form.task_id.data, opinion=form.opinion.data,
                  target=form.target.data or None, user=form.user.data,
                  users=tuple(form.users.data or ()), position=form.position.data or None, data=data,
                  days=form.days.data)
    # 批准延期 is done as the head of the task's department, whatever the task's own role is
    task_role = "head" if action == "grant_extension" else (task.role if task else None)
    department, role = capacity(user, task.department if task else None, task_role, form.capacity.data)
    try:
        with svc.db.write() as s:  # the action and its files: one transaction
            # 代为处理: the service checks the stand-in period and the rules for both people, and
            # the trail records the stand-in as actor and the colleague as on_behalf_of
            result = svc.workflow.act(s, user.id, iid, req, department=department, role=role,
                                      on_behalf_of=form.on_behalf_of.data,
                                      trail_details=attachments.trail_details(files))
            attachments.save(s, iid, result.trail_event_id, user.id, files, svc.clock())
    except InvalidAction as err:
        errors = field_forms.errors_from(err.details)
        if errors:
            flash(tr("表单有误，请检查标出的字段", "The form has errors; see the marked fields"), "error")
            return _render(iid, form=form, task_id=req.task_id, field_errors=errors, status=422)
        raise translated(err) from err
    except ActionError as err:
        raise translated(err) from err
    flash(labels.pick(DONE_MESSAGES.get(action) or (labels.action_label(action, spec),) * 2), "success")
    with svc.db.read() as s:
        still_visible = _visible(s, user, s.get(ProcessInstance, iid), form.on_behalf_of.data)
    # after 转办 the former holder may no longer see the application: back to the inbox then
    return redirect(url_for(".detail", iid=iid) if still_visible else url_for("inbox.index"))

