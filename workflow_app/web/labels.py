"""Words and formats shown to people: statuses, actions, departments and roles in Chinese (or
English), dates in Asia/Shanghai as 2026年11月25日, money in 万元 with thousands separators.
One place, so pages, exports and PDFs say the same thing."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from flask import Flask, session

SHANGHAI = ZoneInfo("Asia/Shanghai")

STATUS = {
    # 办理中, not 审批中: a running application may be at a milestone, a hand-over or a
    # rectification step that nobody "approves".
    "running": ("办理中", "In progress"), "approved": ("已通过", "Approved"),
    "rejected": ("未通过", "Rejected"), "withdrawn": ("已撤回", "Withdrawn"), "void": ("已作废", "Void"),
    "open": ("待处理", "Open"), "waiting": ("等待中", "Waiting"), "done": ("已处理", "Done"),
    "cancelled": ("已取消", "Cancelled"),
}
ACTION = {
    "start": ("发起", "Started"), "submit": ("提交", "Submitted"), "approve": ("同意", "Approved"),
    "reject": ("拒绝", "Rejected"), "return": ("退回", "Returned"), "withdraw": ("撤回", "Withdrew"),
    "void": ("作废", "Voided"), "transfer": ("转办", "Transferred"), "delegate": ("委派", "Delegated"),
    "resolve": ("委派意见", "Delegate's opinion"), "add_signer": ("加签", "Added signer"),
    "remove_signer": ("减签", "Removed signer"), "claim": ("认领", "Claimed"),
    "release": ("退回部门队列", "Released"), "comment": ("评论", "Commented"), "cc": ("抄送", "CC"),
    "urge": ("催办", "Urged"), "subprocess_end": ("子流程结束", "Sub-process ended"),
    "subprocess_resume": ("子流程已到达继续环节", "Sub-process reached its resume step"),
    "migrate": ("迁移版本", "Migrated"), "definition_sync": ("同步流程定义", "Definition synced"),
    "timeout": ("超时", "Timed out"), "deemed_consent": ("逾期视为同意", "Deemed consent"),
    # the clock (docs/clock.md)
    "supplement": ("要求补正", "Supplements requested"), "pause": ("暂停计时", "Clock stopped"),
    "resume": ("恢复计时", "Clock restarted"), "request_extension": ("申请延期", "Extension requested"),
    "grant_extension": ("批准延期", "Extension granted"), "remind": ("到期提醒", "Reminder"),
    "escalate": ("逾期督办", "Escalated"), "deadline_recomputed": ("截止日期重算", "Due date recomputed"),
}
FIELD_TYPES = {
    "text": ("文本", "text"), "integer": ("整数", "whole number"), "decimal": ("数值", "number"),
    "date": ("日期", "date"), "boolean": ("是/否", "yes/no"), "enum": ("选项", "choice"),
    "department": ("单位", "unit"), "attachment": ("附件", "file"),
}
ROLE_FALLBACK = {"submitter": ("项目填报人", "Submitter")}


def english() -> bool:
    try:
        return session.get("locale") == "en"
    except RuntimeError:
        return False


def pick(pair: tuple[str, str]) -> str:
    return pair[1] if english() and pair[1] else pair[0]


def field_type(code: str | None) -> str:
    return pick(FIELD_TYPES.get(code or "", (code or "", code or "")))


def colon() -> str:
    return "：" if not english() else ": "


def joined(items) -> str:
    """A list in running text: 甲、乙 / A, B."""
    return (", " if english() else "、").join(str(i) for i in items)


def paren(value) -> str:
    """An aside after a name: 张三（经信局） / Zhang San (Economy Bureau); empty stays empty."""
    if value in (None, ""):
        return ""
    return f" ({value})" if english() else f"（{value}）"


def semicolon() -> str:
    return "; " if english() else "；"


def status_label(code: str | None) -> str:
    return pick(STATUS.get(code or "", (code or "", code or "")))


def action_label(code: str | None, spec=None) -> str:
    if code in ACTION:
        return pick(ACTION[code])
    if spec is not None and code:
        text = spec.trigger_label(code)
        if text:
            return text.en if english() and text.en else text.zh
    return code or ""


def text(value) -> str:
    """A schema Text (zh/en) in the current language."""
    if value is None:
        return ""
    return value.en if english() and getattr(value, "en", "") else value.zh


def local(dt: datetime | None) -> datetime | None:
    return dt.astimezone(SHANGHAI) if dt else None


def format_date(value: datetime | date | str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(SHANGHAI).date()
    return value.strftime("%Y-%m-%d") if english() else f"{value.year}年{value.month}月{value.day}日"


def format_due_date(due_at: datetime | None) -> str:
    """The last day a task may be done. A deadline is stored as the instant it passes (local
    midnight after the last working day), so the day shown is the one before that instant."""
    if due_at is None:
        return ""
    return format_date(due_at - timedelta(microseconds=1))


def format_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    v = value.astimezone(SHANGHAI)
    return v.strftime("%Y-%m-%d %H:%M") if english() else f"{v.year}年{v.month}月{v.day}日 {v:%H:%M}"


def format_number(value, places: int | None = None) -> str:
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if places is not None:
        number = round(number, places)
    text_ = f"{number:,f}"
    if "." in text_:
        text_ = text_.rstrip("0").rstrip(".")
    return text_


def format_filesize(n: int | None) -> str:
    if n is None:
        return ""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def format_money_wan(value) -> str:
    return f"{format_number(value)} 万元" if value not in (None, "") else ""


def install(app: Flask) -> None:
    from ..container import services

    def department_name(code: str | None) -> str:
        if not code:
            return ""
        dept = services().store.organisation.departments.get(code)
        return text(dept.name) if dept else code

    def role_name(code: str | None) -> str:
        if not code:
            return ""
        name = services().store.organisation.roles.get(code)
        return text(name) if name else pick(ROLE_FALLBACK.get(code, (code, code)))

    def action_in(code: str | None, definition_id: int | None) -> str:
        """An action's label as the definition in force named it (custom triggers included)."""
        if code in ACTION or definition_id is None:
            return action_label(code)
        svc = services()
        with svc.db.read() as session:  # compiled specs are cached: no query after the first
            spec = svc.store.spec(session, definition_id)
        return action_label(code, spec)

    app.jinja_env.filters.update(action_in=action_in, 
        status=status_label, action=action_label, department=department_name, role=role_name,
        date_cn=format_date, due_date_cn=format_due_date, datetime_cn=format_datetime, number=format_number,
        money_wan=format_money_wan, text=text, filesize=format_filesize)
    app.jinja_env.globals.update(english=english, colon=colon, semicolon=semicolon)
    app.jinja_env.filters.update(joined=joined, paren=paren, field_type=field_type,
                                 basename=lambda path: str(path or "").replace("\\", "/").rsplit("/", 1)[-1])
