"""Out-of-office stand-ins (代为处理): a person names a colleague who may act on their tasks for a
period. The workflow service checks the period at each action (`Workflow.act(on_behalf_of=...)`)
and the trail records both people; this module lets people name, list and end stand-ins.

Rules: the stand-in is another active, non-administrator account (administrators decide nothing,
三员分立); a period has an end, lies in the future or present (history is not rewritten), and lasts
at most MAX_DAYS. Ending one early shortens it to now rather than deleting it, so the record of
who could act for whom, when, stays. Every change is in the security log.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from ..models import Substitution, User
from .accounts import log

MAX_DAYS = 90
MAX_REASON = 500


class SubstitutionRefused(ValueError):
    """Why a stand-in cannot be named (the message is shown to the person)."""


@dataclass(frozen=True)
class Row:
    id: int
    user_id: int
    user_name: str
    substitute_id: int
    substitute_name: str
    starts_at: datetime
    ends_at: datetime
    reason: str

    def state(self, now: datetime) -> str:
        if self.ends_at <= now:
            return "ended"
        return "active" if self.starts_at <= now else "planned"


def name_stand_in(session: Session, user: User, substitute_username: str, starts_at: datetime,
                  ends_at: datetime, reason: str, *, now: datetime, ip: str = "") -> Substitution:
    if user.admin_role:
        raise SubstitutionRefused("管理员账户不办理审批，无需代理人")
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON or "\x00" in reason:
        raise SubstitutionRefused(f"事由不超过 {MAX_REASON} 个字符")
    other = session.scalar(select(User).where(User.username == (substitute_username or "").strip()[:64]))
    if other is None or not other.is_active:
        raise SubstitutionRefused("找不到该用户，或该账户已停用")
    if other.id == user.id:
        raise SubstitutionRefused("不能指定自己为代理人")
    if other.admin_role:
        raise SubstitutionRefused("管理员账户不能作为代理人")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise SubstitutionRefused("时间须带时区")
    if ends_at <= starts_at:
        raise SubstitutionRefused("结束时间须晚于开始时间")
    if starts_at < now - timedelta(minutes=5):
        starts_at = now  # a period cannot reach back: what happened happened without a stand-in
    if ends_at <= now:
        raise SubstitutionRefused("结束时间须晚于当前时间")
    if ends_at - starts_at > timedelta(days=MAX_DAYS):
        raise SubstitutionRefused(f"代理期限不超过 {MAX_DAYS} 天")
    row = Substitution(user_id=user.id, substitute_id=other.id, starts_at=starts_at, ends_at=ends_at,
                       reason=reason)
    session.add(row)
    session.flush()
    log(session, "substitution_set", now=now, user=user, ip=ip, substitution=row.id,
        substitute=other.username, starts_at=starts_at.isoformat(), ends_at=ends_at.isoformat())
    return row


def end_early(session: Session, user: User, substitution_id: int, *, now: datetime, ip: str = "") -> bool:
    """End one of `user`'s own stand-ins now; False if it is not theirs or already over."""
    row = session.get(Substitution, substitution_id)
    if row is None or row.user_id != user.id or row.ends_at <= now:
        return False
    row.ends_at = max(now, row.starts_at)
    log(session, "substitution_ended", now=now, user=user, ip=ip, substitution=row.id)
    return True


def involving(session: Session, user_id: int, *, now: datetime, history_days: int = 30) -> list[Row]:
    """Stand-ins this person named or is named as, not ended more than `history_days` ago."""
    absent, stand_in = aliased(User), aliased(User)
    q = (select(Substitution, absent.display_name, stand_in.display_name)
         .join(absent, absent.id == Substitution.user_id)
         .join(stand_in, stand_in.id == Substitution.substitute_id)
         .where(or_(Substitution.user_id == user_id, Substitution.substitute_id == user_id),
                Substitution.ends_at > now - timedelta(days=history_days))
         .order_by(Substitution.starts_at.desc()).limit(200))
    return [Row(s.id, s.user_id, a, s.substitute_id, b, s.starts_at, s.ends_at, s.reason)
            for s, a, b in session.execute(q)]


def standing_in_for(session: Session, substitute_id: int, *, now: datetime) -> list[tuple[int, str]]:
    """(user id, name) of everyone `substitute_id` may act for right now — what the instance
    page needs to offer 代为处理."""
    q = (select(User.id, User.display_name).join(Substitution, Substitution.user_id == User.id)
         .where(Substitution.substitute_id == substitute_id, Substitution.starts_at <= now,
                Substitution.ends_at > now, User.is_active.is_(True))
         .distinct().order_by(User.id))
    return [(i, n) for i, n in session.execute(q)]


def tasks_to_cover(session: Session, substitute_id: int, *, now: datetime, limit: int = 200) -> list[tuple]:
    """Open tasks assigned to the people `substitute_id` stands in for right now:
    (task id, instance id, instance title, step, absent person's name) — the stand-in's list of
    what they may act on (代为处理); the instance page offers the action."""
    from ..models import ProcessInstance, Task

    absent = dict(standing_in_for(session, substitute_id, now=now))
    if not absent:
        return []
    q = (select(Task.id, Task.instance_id, ProcessInstance.title, Task.step, Task.assignee_id)
         .join(ProcessInstance, ProcessInstance.id == Task.instance_id)
         .where(Task.status == "open", Task.assignee_id.in_(list(absent)), Task.delegate_id.is_(None))
         .order_by(Task.id.desc()).limit(limit))
    return [(t, i, title, step, absent[a]) for t, i, title, step, a in session.execute(q)]
