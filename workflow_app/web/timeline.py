"""What an instance page reads out: the timeline of trail events (who, in which department and
role, on whose behalf, what, with which opinion, from which step to which), who is being waited
on now, and the form data with units."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine.organisation import Organisation
from ..engine.schema import FieldType
from ..engine.spec import ProcessSpec
from ..models import TrailEvent, User
from ..services.queries import InstanceView
from . import labels

POSITIONS = {"before": ("前加签", "before"), "after": ("后加签", "after"), "alongside": ("并加签", "alongside")}
TONE = {"start": "ok", "submit": "ok", "approve": "ok", "resolve": "ok", "reject": "bad",
        "return": "warn", "withdraw": "warn", "void": "bad", "urge": "warn", "timeout": "bad"}
_PEOPLE_KEYS = ("to", "from", "user", "owner")
DUE_SOON_WORKING_DAYS = 1  # "due soon": due today or on the next working day
PAUSING = ("supplement", "pause")


@dataclass(frozen=True)
class Due:
    """What a page shows beside a task's due date (the `due_badge` macro)."""

    state: str                    # overdue | soon | ok | paused
    due_at: datetime
    provisional: bool             # 暂定: the year's holiday schedule is not loaded
    working_days: int             # working days left after today; negative: overdue by
    paused_at: datetime | None = None
    reason: str = ""              # why the clock stopped (补正 list, expert review ...)


def due_view(task, now: datetime, reason: str = "") -> Due | None:
    """The due date of a task row (anything with due_at, due_provisional, paused_at), counted in
    working days with the service's calendar; None without one."""
    from ..container import services
    left = services().workflow.days_left(task, now) if task.due_at is not None else None
    if left is None:
        return None
    if left.paused:
        state = "paused"
    elif left.overdue:
        state = "overdue"
    else:
        state = "soon" if left.working_days <= DUE_SOON_WORKING_DAYS else "ok"
    return Due(state, task.due_at, left.provisional, left.working_days, task.paused_at, reason)


def pause_reasons(events) -> dict[int, str]:
    """Task id -> the opinion of the event that stopped its clock last (补正 or pause)."""
    out: dict[int, str] = {}
    for e in events:
        if e.action == "pause" and e.task_id is not None:
            out[e.task_id] = e.opinion or ""
        elif e.action == "supplement":
            for tid in (e.details or {}).get("paused", ()):
                out[tid] = e.opinion or ""
    return out


@dataclass
class Entry:
    event: TrailEvent
    action: str
    tone: str
    from_title: str
    to_title: str
    on_behalf: str | None
    notes: list[str] = field(default_factory=list)


@dataclass
class Waiting:
    step_title: str
    branch_title: str
    assignee: str | None          # a named person, or None for a department queue
    department: str
    role: str
    status: str                   # open | waiting
    delegate: str | None
    due: Due | None               # None: no time limit (or not open yet)
    resubmit: bool = False        # 退回 to the submitter: waiting for the resubmission


def _step_title(spec: ProcessSpec, step_id: str | None) -> str:
    if not step_id:
        return ""
    step = spec.steps.get(step_id)
    return labels.text(step.title) if step else step_id


def build_timeline(s: Session, view: InstanceView) -> list[Entry]:
    spec = view.spec
    names = dict(view.users)
    wanted = set()
    for e in view.events:
        d = e.details or {}
        wanted.update(d[k] for k in _PEOPLE_KEYS if isinstance(d.get(k), int))
        wanted.update(u for u in d.get("users", []) if isinstance(u, int))
    missing = wanted - set(names)
    if missing:
        names.update(s.execute(select(User.id, User.display_name).where(User.id.in_(missing))).all())
    field_labels = {f.name: labels.text(f.label) for f in spec.fields}
    pick = labels.pick
    out = []
    for e in view.events:
        d = e.details or {}
        notes = []
        who = names.get(d.get("to")) if isinstance(d.get("to"), int) else None
        if e.action == "transfer" and who:
            notes.append(pick((f"转办给 {who}", f"to {who}")))
        elif e.action == "delegate" and who:
            notes.append(pick((f"委派给 {who}", f"to {who}")))
        elif e.action == "resolve" and names.get(d.get("owner")):
            notes.append(pick((f"意见交回 {names[d['owner']]}", f"back to {names[d['owner']]}")))
        elif e.action in ("add_signer", "remove_signer") and names.get(d.get("user")):
            where = pick(POSITIONS.get(d.get("position"), ("", "")))
            notes.append(f"{names[d['user']]}" + labels.paren(where))
        elif e.action == "cc":
            notes.append(pick(("抄送：", "to: ")) + "、".join(names.get(u, str(u)) for u in d.get("users", [])))
        notes.extend(clock_notes(e.action, d))
        if d.get("edited"):
            notes.append(pick(("修改了：", "changed: ")) + "、".join(field_labels.get(n, n) for n in d["edited"]))
        if d.get("outcome"):
            notes.append(pick(("流程结束：", "ended: ")) + labels.status_label(d["outcome"]))
        if d.get("child"):
            notes.append(pick((f"子流程 #{d['child']}", f"sub-process #{d['child']}")))
        out.append(Entry(event=e, action=labels.action_label(e.action, spec), tone=TONE.get(e.action, "info"),
                         from_title=_step_title(spec, e.from_step), to_title=_step_title(spec, e.to_step),
                         on_behalf=names.get(e.on_behalf_of_id) if e.on_behalf_of_id else None,
                         notes=notes))
    return out


NOTIFY = {"assignee": ("经办人", "the assignee"), "coordinator": ("牵头协调部门", "the coordinating body")}


def clock_notes(action: str, d: dict) -> list[str]:
    """The clock's trail details in words (the action itself is named by labels.ACTION)."""
    pick = labels.pick
    if action == "supplement":
        return [pick(("本环节计时暂停，待发起人补正后恢复", "the step's clock stops until the submitter answers"))]
    if action == "submit" and d.get("supplement"):
        return [pick((f"补正已提交，计时恢复，截止日期顺延 {d.get('days', 0)} 个工作日",
                      f"supplements sent; the clock runs again, due date moved by {d.get('days', 0)} working days"))]
    if action == "resume":
        return [pick((f"截止日期顺延 {d.get('days', 0)} 个工作日", f"due date moved by {d.get('days', 0)} working days"))]
    if action == "request_extension":
        return [pick((f"申请延期 {d.get('days')} 个工作日", f"{d.get('days')} more working days asked for"))]
    if action in ("grant_extension", "deadline_recomputed") and d.get("to"):
        to = labels.format_date(datetime.fromisoformat(d["to"]) - timedelta(microseconds=1))
        extra = pick((f"延期 {d['days']} 个工作日，", f"{d['days']} working days more, ")) if d.get("days") else ""
        provisional = pick(("（暂定）", " (provisional)")) if d.get("provisional") else ""
        return [extra + pick(("截止日期改为 ", "now due ")) + to + provisional]
    if action in ("remind", "escalate"):
        target = d.get("notify") or ""
        if target in NOTIFY:
            whom = pick(NOTIFY[target])
        elif target.endswith("/head"):
            whom = pick(("部门负责人", "the department head"))
        else:
            whom = target
        when = pick(("已逾期", "overdue")) if d.get("overdue") else pick(("即将到期", "due soon"))
        return [f"{when} · {pick(('通知', 'told'))} {whom}"]
    if action == "deemed_consent":
        return [pick(("在规定时限内未答复，系统记为同意", "no answer within the time limit: recorded as consent"))]
    return []


def waiting_on(view: InstanceView, now: datetime) -> list[Waiting]:
    spec = view.spec
    reasons = pause_reasons(view.events)
    out = []
    for t in view.open_tasks:
        step = spec.steps.get(t.step)
        branch = step.branch(t.branch) if step else None
        out.append(Waiting(
            step_title=_step_title(spec, t.step), branch_title=labels.text(branch.title) if branch else "",
            assignee=view.users.get(t.assignee_id) if t.assignee_id else None,
            department=t.department, role=t.role, status=t.status,
            delegate=view.users.get(t.delegate_id) if t.delegate_id else None,
            due=due_view(t, now, reasons.get(t.id, "") if t.paused_at else "") if t.status == "open" else None,
            resubmit=t.origin == "start"))
    return out


def display_value(f, value, org: Organisation) -> str:
    if value is None or value == "":
        return ""
    t = f.type
    if t is FieldType.boolean:
        return labels.pick(("是", "Yes")) if value else labels.pick(("否", "No"))
    if t is FieldType.date:
        return labels.format_date(value)
    if t is FieldType.department:
        dept = org.departments.get(value)
        return labels.text(dept.name) if dept else str(value)
    if t in (FieldType.decimal, FieldType.integer):
        if f.unit == "万元":
            return labels.format_money_wan(value)
        number = labels.format_number(value)
        return f"{number} {f.unit}" if f.unit else number
    return str(value)


def form_rows(spec: ProcessSpec, data: dict, org: Organisation,
              files: dict[str, str] | None = None) -> list[tuple[str, str, bool]]:
    """(label, value, long) for every filled-in field, in definition order; an uploaded file
    (`sha256:<hex>`) shows as its file name (`files`: sha256 -> name)."""
    rows = []
    for f in spec.fields:
        value = display_value(f, (data or {}).get(f.name), org)
        if f.type is FieldType.attachment and value.startswith("sha256:"):
            sha = value[7:]
            value = f"{(files or {}).get(sha, '')} · sha256 {sha[:12]}…".lstrip(" ·")
        if value:
            rows.append((labels.text(f.label), value, len(value) > 40))
    return rows
