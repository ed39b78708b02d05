"""Who hears of an action, written as `Notification` rows in the action's own transaction.

From an engine `Effect`: the people of every task that opened or was handed to someone (the
assignee, the delegate, or — for a department-queue task — every member holding the role), the
submitter when an application is returned or decided, and the `Notice`s the clock adds
(reminder and escalation rungs, 补正, 延期, deemed consent). The person who acted is not told of
their own action. Each row also carries the recipient's e-mail address at that moment (NULL: no
e-mail); the SLA sweeper sends those later (outbox), so an action never waits for a mail server.
"""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Integer, bindparam, func, insert, literal, select

from ..engine.effects import Effect, Notice
from ..engine.routing import Directory
from ..engine.state import Actor, InstanceState, Origin, TaskState, TaskStatus
from ..models import Notification, User
from ..prepared import Prepared

SHANGHAI = ZoneInfo("Asia/Shanghai")

# kind -> title template (Chinese: the people are district staff; English in the body's tail)
TITLES = {
    "task": "待办：{title}", "returned": "已退回：{title}", "decided": "已办结：{title}",
    "urge": "催办：{title}", "remind": "即将到期：{title}", "overdue": "已逾期：{title}",
    "escalate": "督办：{title}", "supplement": "补正通知：{title}", "supplemented": "已补正：{title}",
    "extension_requested": "延期申请：{title}", "extended": "已延期：{title}",
    "deemed_consent": "逾期视为同意：{title}",
}
KIND_LABELS = {
    "task": ("新待办", "New task"), "returned": ("退回", "Returned"), "decided": ("办结", "Decided"),
    "urge": ("催办", "Urged"), "remind": ("到期提醒", "Due soon"), "overdue": ("逾期提醒", "Overdue"),
    "escalate": ("督办", "Escalated"), "supplement": ("补正", "Supplements requested"),
    "supplemented": ("已补正", "Supplements received"), "extension_requested": ("延期申请", "Extension requested"),
    "extended": ("延期", "Extended"), "deemed_consent": ("逾期视为同意", "Deemed consent"),
}
OUTCOMES = {"approved": "已通过", "rejected": "未通过", "withdrawn": "已撤回", "void": "已作废"}


def _local(instant: datetime | None) -> str:
    if instant is None:
        return ""
    v = instant.astimezone(SHANGHAI)
    return f"{v.year}年{v.month}月{v.day}日 {v:%H:%M}"


def task_people(task: TaskState, directory: Directory) -> tuple[int, ...]:
    if task.delegate is not None:
        return (task.delegate,)
    if task.assignee is not None:
        return (task.assignee,)
    return tuple(directory.members(task.department, task.role))


def _wanted(state: InstanceState, effect: Effect, directory: Directory) -> list[tuple[int, str, TaskState | None]]:
    """(user, kind, task) for everyone this effect concerns, in order, without duplicates."""
    action = effect.trail.action
    out: list[tuple[int, str, TaskState | None]] = []
    for task in effect.notify:
        if task.status is not TaskStatus.open:
            continue
        if action == "urge":
            kind = "urge"
        elif task.origin is Origin.start:
            kind = "returned"
        else:
            kind = "task"
        out += [(u, kind, task) for u in task_people(task, directory)]
    for notice in effect.notices:
        out += [(u, _kind(notice, effect), notice.task) for u in _notice_people(notice, directory)]
    if effect.ended:
        out.append((state.submitter, "decided", None))
    seen: set[tuple[int, str, int | None]] = set()
    unique = []
    for user, kind, task in out:
        key = (user, kind, task.id if task else None)
        if key not in seen:
            seen.add(key)
            unique.append((user, kind, task))
    return unique


def _kind(notice: Notice, effect: Effect) -> str:
    if notice.kind == "remind" and effect.trail.details.get("overdue"):
        return "overdue"
    return notice.kind


def _notice_people(notice: Notice, directory: Directory) -> tuple[int, ...]:
    if notice.users:
        return notice.users
    if notice.department is not None and notice.role is not None:
        return tuple(directory.members(notice.department, notice.role))
    return task_people(notice.task, directory) if notice.task is not None else ()


def _body(kind: str, state: InstanceState, effect: Effect, task: TaskState | None) -> str:
    spec = state.spec
    lines = []
    step = spec.steps.get(task.step if task else state.current_step)
    if step is not None:
        lines.append(f"环节：{step.title.zh}")
    if kind == "decided":
        lines.append(f"结果：{OUTCOMES.get(state.status.value, state.status.value)}")
    if task is not None and task.due_at is not None and kind not in ("decided",):
        lines.append(f"办理期限：{_local(task.due_at)}前" + ("（暂定）" if task.due_provisional else ""))
    details = effect.trail.details
    if kind == "extended":
        lines.append(f"延期 {details.get('days')} 个工作日")
    if kind == "extension_requested":
        lines.append(f"申请延期 {details.get('days')} 个工作日")
    if effect.trail.opinion and kind not in ("task",):
        lines.append(f"意见：{effect.trail.opinion}")
    lines.append(f"申请编号：{state.id}")
    return "\n".join(lines)


# The stored notice is Chinese (it is also the e-mail, and district staff read Chinese); a reader
# who switched the pages to English gets it read back line by line. The patterns are exactly the
# lines `_body` writes, so the two stay side by side here.
_OUTCOMES_EN = {"已通过": "approved", "未通过": "rejected", "已撤回": "withdrawn", "已作废": "void"}
_LINES_EN = (
    (re.compile(r"^环节：(.*)$"), lambda m, steps: f"Step: {steps.get(m[1], m[1])}"),
    (re.compile(r"^结果：(.*)$"), lambda m, _steps: f"Outcome: {_OUTCOMES_EN.get(m[1], m[1])}"),
    (re.compile(r"^办理期限：(\d+)年(\d+)月(\d+)日 (\d\d:\d\d)前(（暂定）)?$"),
     lambda m, _steps: f"Due before {m[1]}-{int(m[2]):02d}-{int(m[3]):02d} {m[4]}" + (" (provisional)" if m[5] else "")),
    (re.compile(r"^延期 (\S+) 个工作日$"), lambda m, _steps: f"Extended by {m[1]} working days"),
    (re.compile(r"^申请延期 (\S+) 个工作日$"), lambda m, _steps: f"{m[1]} working days of extension requested"),
    (re.compile(r"^意见：(.*)$"), lambda m, _steps: f"Opinion: {m[1]}"),
    (re.compile(r"^申请编号：(.*)$"), lambda m, _steps: f"Application no. {m[1]}"),
)


def in_english(kind: str, title: str, body: str, steps: dict[str, str] | None = None) -> tuple[str, str]:
    """The notice's title and body for an English page: the wording translated, step names by
    `steps` (Chinese title -> English title of the definition), the application's own words (its
    title, opinions) kept as written."""
    prefix = TITLES.get(kind, "{title}").split("{title}")[0]
    if prefix and title.startswith(prefix):
        title = f"{KIND_LABELS.get(kind, (kind, kind))[1]}: {title[len(prefix):]}"
    lines = []
    for line in body.splitlines():
        for pattern, english in _LINES_EN:
            if (match := pattern.match(line)) is not None:
                line = english(match, steps or {})
                break
        lines.append(line)
    return title, "\n".join(lines)


_N, _U = Notification.__table__, User.__table__
# One row per (recipient, notice), taking the recipient's address in the same statement; an
# inactive (or deleted) user gets nothing. Run as executemany over the recipients of one notice.
_INSERT = Prepared(insert(_N).from_select(
    ["user_id", "kind", "instance_id", "task_id", "title", "body", "created_at", "email_to", "email_attempts"],
    select(_U.c.id, bindparam("kind", type_=_N.c.kind.type), bindparam("instance_id", type_=Integer()),
           bindparam("task_id", type_=Integer()), bindparam("title", type_=_N.c.title.type),
           bindparam("body", type_=_N.c.body.type), bindparam("created_at", type_=_N.c.created_at.type),
           func.nullif(_U.c.email, ""), literal(0, Integer()))
    .where(_U.c.id == bindparam("user_id"), _U.c.is_active.is_(True))))


def record(conn: Connection, *, state: InstanceState, title: str, effect: Effect, actor: Actor,
           directory: Directory, now: datetime) -> int:
    """Insert the notifications `effect` causes, one executemany per notice (kind, task); the
    number of rows written."""
    groups: dict[tuple[str, int | None], tuple[TaskState | None, list[int]]] = {}
    for user, kind, task in _wanted(state, effect, directory):
        if actor.system or user != actor.user_id:
            groups.setdefault((kind, task.id if task else None), (task, []))[1].append(user)
    written = 0
    for (kind, task_id), (task, users) in groups.items():
        common = dict(kind=kind, instance_id=state.id, task_id=task_id,
                      title=TITLES.get(kind, "{title}").format(title=title)[:300],
                      body=_body(kind, state, effect, task), created_at=now)
        written += _INSERT.many(conn, [{**common, "user_id": user} for user in users])
    return written
