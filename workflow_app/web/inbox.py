"""The inbox (`/`): 待办, 部门待认领, 已办, 抄送, 我发起的 — with due-date warnings, a title
search, keyset paging ("更多") and 批量同意 for steps whose definition allows it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectMultipleField

from ..container import services
from ..engine.errors import ActionError
from ..engine.runtime import Request
from ..models import ProcessDefinition, ProcessInstance, Task, TrailEvent
from ..services import queries
from . import labels
from .current import me
from .instances import capacity
from .messages import action_message
from .pages import tr
from .timeline import PAUSING, Due, due_view, pause_reasons

bp = Blueprint("inbox", __name__)

PAGE = 30
TABS = (  # key, Chinese, English
    ("my", "待办", "To do"),
    ("queue", "部门待认领", "Department queue"),
    ("done", "已办", "Done"),
    ("cc", "抄送我的", "CC'd to me"),
    ("started", "我发起的", "Started by me"),
)


FILTER_ARGS = ("q", "process", "step", "department", "due", "since", "until")


class BulkForm(FlaskForm):
    task_ids = SelectMultipleField(coerce=int, validate_choice=False)


@dataclass
class Row:
    """An inbox line with what the template shows beside it."""

    item: queries.InboxRow
    process_title: str
    step_title: str
    due: Due | None = None          # the due date in working days (None: no deadline)
    bulk: bool = False
    delegated_to_me: bool = False
    returned: bool = False          # an application 退回 to its submitter

    @property
    def key(self) -> int:
        return self.item.task_id or self.item.instance_id


def _fetch(s, tab: str, user, before: int | None, search: str | None, limit: int,
           filters: queries.Filters | None = None):
    kw = dict(before_id=before, limit=limit, search=search, filters=filters)
    if tab == "my":
        return queries.my_tasks(s, user.id, **kw)
    if tab == "queue":
        return queries.queue_tasks(s, user.memberships, **kw)
    if tab == "done":
        return queries.done_tasks(s, user.id, **kw)
    if tab == "cc":
        return queries.cc_instances(s, user.id, **kw)
    return queries.started_instances(s, user.id, **kw)


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def filters_from(args, now: datetime) -> queries.Filters:
    """The filters in the query string (unknown or malformed values are ignored, not errors)."""
    def short(name: str) -> str | None:
        return (args.get(name) or "").strip()[:64] or None
    due = args.get("due")
    return queries.Filters(process=short("process"), step=short("step"), department=short("department"),
                           due=due if due in queries.DUE_STATES else None,
                           since=_day(args.get("since")), until=_day(args.get("until")), now=now)


def _filter_choices(s, f: queries.Filters) -> dict:
    """What the filter selects offer: the processes (latest titles), the steps of the chosen
    process, the departments of the organisation."""
    svc = services()
    processes, steps = [], []
    for row in s.scalars(select(ProcessDefinition).where(ProcessDefinition.is_latest.is_(True))
                         .order_by(ProcessDefinition.key)):
        spec = svc.store.spec(s, row.id)
        processes.append((row.key, labels.text(spec.title)))
        if row.key == f.process:
            steps = [(st.id, labels.text(st.title)) for st in spec.steps.values()]
    departments = [(d.code, labels.text(d.name)) for d in svc.store.organisation.departments.values()]
    return {"processes": processes, "steps": steps, "departments": departments}


def _rows(s, items: list[queries.InboxRow], tab: str, user_id: int, now: datetime) -> list[Row]:
    svc = services()
    definitions = dict(s.execute(select(ProcessInstance.id, ProcessInstance.definition_id).where(
        ProcessInstance.id.in_({i.instance_id for i in items}))).all()) if items else {}
    task_ids = [i.task_id for i in items if i.task_id]
    tasks = {t.id: t for t in s.execute(select(Task.id, Task.origin, Task.delegate_id, Task.due_at,
                                               Task.due_provisional, Task.paused_at)
                                        .where(Task.id.in_(task_ids)))} if task_ids else {}
    paused = {t.id for t in tasks.values() if t.paused_at is not None}
    reasons = pause_reasons(s.scalars(select(TrailEvent).where(
        TrailEvent.instance_id.in_({i.instance_id for i in items if i.task_id in paused}),
        TrailEvent.action.in_(PAUSING)).order_by(TrailEvent.instance_id, TrailEvent.seq))) if paused else {}
    rows = []
    for item in items:
        spec = svc.store.spec(s, definitions[item.instance_id])
        step = spec.steps.get(item.step)
        task = tasks.get(item.task_id)
        row = Row(item, labels.text(spec.title), labels.text(step.title) if step else item.step)
        if tab in ("my", "queue"):
            row.due = due_view(task, now, reasons.get(task.id, "")) if task is not None else None
            row.delegated_to_me = bool(task and task.delegate_id == user_id)
            row.returned = bool(task and task.origin == "start")
            row.bulk = (tab == "my" and step is not None and step.bulk_approve
                        and not row.delegated_to_me and not row.returned)
        rows.append(row)
    return rows


@bp.get("/")
@login_required
def index():
    user = me()
    tab = request.args.get("tab", "my")
    if tab not in {t[0] for t in TABS}:
        tab = "my"
    search = (request.args.get("q") or "").strip()[:100] or None
    before = request.args.get("before", type=int)
    svc = services()
    now = svc.clock()
    filters = filters_from(request.args, now)
    with svc.db.read() as s:
        items = _fetch(s, tab, user, before, search, PAGE + 1, filters)
        more = len(items) > PAGE
        rows = _rows(s, items[:PAGE], tab, user.id, now)
        choices = _filter_choices(s, filters)
    kept = {k: v for k, v in request.args.items() if k in FILTER_ARGS and v}
    return render_template(
        "inbox/index.html", tabs=TABS, tab=tab, rows=rows, search=search or "", more=more,
        filters=filters, choices=choices, kept=kept,
        next_before=rows[-1].key if more and rows else None, now=now,
        any_bulk=any(r.bulk for r in rows),
        is_submitter=user.has_role("submitter"))


@bp.post("/inbox/bulk-approve")
@login_required
def bulk_approve():
    """同意 several tasks at once: each in its own transaction, so one refusal (someone else
    acted first, an opinion is required...) does not undo the others."""
    user = me()
    form = BulkForm()
    back = url_for("inbox.index", tab="my")
    if not form.validate_on_submit() or not form.task_ids.data:
        flash(tr("请先勾选要批量同意的待办", "Tick the tasks to approve first"), "warning")
        return redirect(back)
    svc = services()
    done, refused = 0, []
    for task_id in dict.fromkeys(form.task_ids.data[:200]):
        with svc.db.read() as s:
            found = s.execute(select(Task.instance_id, Task.step, Task.department, Task.role,
                                     ProcessInstance.definition_id, ProcessInstance.title)
                              .join(ProcessInstance, ProcessInstance.id == Task.instance_id)
                              .where(Task.id == task_id)).one_or_none()
            spec = svc.store.spec(s, found.definition_id) if found else None
        if found is None:
            continue
        step = spec.steps.get(found.step)
        if step is None or not step.bulk_approve:
            refused.append(f"{found.title}：" + tr("此环节不支持批量同意", "this step cannot be bulk-approved"))
            continue
        department, role = capacity(user, found.department, found.role)
        try:
            with svc.db.write() as s:
                svc.workflow.act(s, user.id, found.instance_id, Request("approve", task_id),
                                 department=department, role=role)
            done += 1
        except ActionError as err:
            refused.append(f"{found.title}{labels.colon()}{action_message(err)}")
    if done:
        flash(tr(f"已批量同意 {done} 项", f"Approved {done} task(s)"), "success")
    for line in refused:
        flash(tr("未处理：", "Not done: ") + line, "warning")
    return redirect(back)
