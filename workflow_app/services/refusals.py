"""Refused decisions for the compliance console: attempted self-approvals, recusals (回避) and
second decisions by the same person, as recorded in the security log (`action_refused`, written by
the web and API layers whenever the engine refuses with a reason code — see engine/permissions.py
`Refusal`). Read-only; the reviewer's view of "who tried what they may not"."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import SecurityEvent, Task

EVENT = "action_refused"
# The reason codes a compliance reviewer follows up, with their labels (zh, en).
REASONS = {"self_approval": ("本人审批本人申请（已拒绝）", "Own application (refused)"),
           "recusal": ("回避：提交方集团人员（已拒绝）", "Recusal: submitting group (refused)"),
           "same_decider": ("同一人重复审批（已拒绝）", "Same person deciding twice (refused)")}
PAGE = 200


@dataclass(frozen=True)
class RefusalRow:
    id: int
    at: datetime
    username: str
    ip: str
    reason: str
    instance_id: int | None
    task_id: int | None
    path: str


def refused(session: Session, *, reason: str | None = None, before_id: int | None = None) -> list[RefusalRow]:
    """Newest first, PAGE at a time (keyset on id); `reason` one of REASONS or None for all."""
    codes = [reason] if reason in REASONS else list(REASONS)
    stmt = (select(SecurityEvent).where(SecurityEvent.event == EVENT)
            .where(SecurityEvent.details["reason"].as_string().in_(codes)))
    if before_id:
        stmt = stmt.where(SecurityEvent.id < before_id)
    rows = list(session.scalars(stmt.order_by(SecurityEvent.id.desc()).limit(PAGE)))
    task_ids = {r.details.get("task_id") for r in rows if isinstance(r.details.get("task_id"), int)}
    instance_of = dict(session.execute(select(Task.id, Task.instance_id).where(Task.id.in_(task_ids)))
                       .all()) if task_ids else {}
    return [RefusalRow(r.id, r.created_at, r.username, r.ip, r.details.get("reason", ""),
                       instance_of.get(r.details.get("task_id")), r.details.get("task_id"),
                       r.details.get("path", "")) for r in rows]


def counts(session: Session) -> dict[str, int]:
    reason = SecurityEvent.details["reason"].as_string()
    q = (select(reason, func.count()).where(SecurityEvent.event == EVENT, reason.in_(list(REASONS)))
         .group_by(reason))
    found = dict(session.execute(q).all())
    return {code: int(found.get(code, 0)) for code in REASONS}
