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
DUE_SOON = timedelta(days=2)


def due_state(due_at: datetime | None, now: datetime) -> str | None:
    """overdue (past due), soon (due within two days), ok — or None without a deadline."""
    if due_at is None:
        return None
    if due_at < now:
        return "overdue"
    return "soon" if due_at < now + DUE_SOON else "ok"


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
    due_at: datetime | None
    due: str | None               # overdue | soon | ok
    provisional: bool
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


def waiting_on(view: InstanceView, now: datetime) -> list[Waiting]:
    spec = view.spec
    out = []
    for t in view.open_tasks:
        step = spec.steps.get(t.step)
        branch = step.branch(t.branch) if step else None
        out.append(Waiting(
            step_title=_step_title(spec, t.step), branch_title=labels.text(branch.title) if branch else "",
            assignee=view.users.get(t.assignee_id) if t.assignee_id else None,
            department=t.department, role=t.role, status=t.status,
            delegate=view.users.get(t.delegate_id) if t.delegate_id else None,
            due_at=t.due_at, due=due_state(t.due_at, now) if t.status == "open" else None,
            provisional=t.due_provisional, resubmit=t.origin == "start"))
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
