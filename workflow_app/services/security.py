"""Account security (身份鉴别): the policy in force, what a signed-in person must do before
anything else, and their own sessions.

The policy starts from the configuration (config.py) and may be tightened — never loosened below
the 等保 level-3 figures — by the security administrator. A change is a `policy_set` event in the
security log holding the complete policy, so the log is both the store and the record of every
change; the newest such event is in force. Each process caches it for `CACHE_SECONDS` (a page
view must not cost an extra query) and drops its cache when it sets a policy itself.

Before anything else a signed-in person must (in this order):
1. change an initial password (`must_change_password`, set when an administrator creates the
   account or resets its password) or one older than `max_age_days`;
2. enrol a second factor if they need one: administrators (三员), members of the SASAC
   department and holders of the `compliance` role. Enrolment is *required* for them when
   `SECOND_FACTOR_ENFORCED` is on (the default outside tests); anyone who has enrolled is asked
   for a code at every login regardless.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta

from config import RANGES
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models import LoginSession, SecurityEvent, User
from .accounts import Policy, log

POLICY_EVENT = "policy_set"
CACHE_SECONDS = 30
SECOND_FACTOR_DEPARTMENTS = frozenset({"sasac"})
SECOND_FACTOR_ROLES = frozenset({"compliance"})

# What the security administrator may set, and how far: (lowest, highest). The ranges are the
# deployment's own (config.RANGES: each stops at the level-3 figure, PITFALLS.md, 等保 2.0), so a
# setting can only be as strict or stricter, and the two can never disagree.
BOUNDS: dict[str, tuple[int, int]] = {
    "min_length": RANGES["PASSWORD_MIN_LENGTH"],
    "classes": (3, 4),
    "max_failures": RANGES["LOGIN_MAX_FAILURES"],
    "lock_minutes": RANGES["LOGIN_LOCK_MINUTES"],
    "idle_minutes": RANGES["SESSION_IDLE_MINUTES"],
    "admin_idle_minutes": RANGES["ADMIN_IDLE_MINUTES"],
    "absolute_hours": RANGES["SESSION_ABSOLUTE_HOURS"],
    "max_age_days": RANGES["PASSWORD_MAX_AGE_DAYS"],
}
LABELS = {  # zh, en — shown on the policy page and in the log
    "min_length": ("密码最短长度", "Minimum password length"),
    "classes": ("密码字符类别数", "Character classes required"),
    "max_failures": ("连续失败锁定次数", "Failures before lock"),
    "lock_minutes": ("锁定时长（分钟）", "Lock duration (minutes)"),
    "idle_minutes": ("空闲超时（分钟）", "Idle timeout (minutes)"),
    "admin_idle_minutes": ("管理员空闲超时（分钟）", "Administrators' idle timeout (minutes)"),
    "absolute_hours": ("会话最长时长（小时）", "Absolute session limit (hours)"),
    "max_age_days": ("密码有效期（天）", "Password lifetime (days)"),
}

PASSWORD_CHANGE = "password_change"
PASSWORD_EXPIRED = "password_expired"
TOTP_ENROLMENT = "totp_enrolment"


# ---------------------------------------------------------------- the policy in force
def policy_in_force(session: Session, base: Policy) -> Policy:
    """`base` (from the configuration) overridden by the newest `policy_set` event."""
    details = session.scalar(select(SecurityEvent.details).where(SecurityEvent.event == POLICY_EVENT)
                             .order_by(SecurityEvent.id.desc()).limit(1))
    if not details:
        return base
    known = {f.name for f in fields(Policy)}
    values = {k: int(v) for k, v in (details.get("policy") or {}).items() if k in known}
    return replace(base, **values)


class PolicyCache:
    """Per process: the policy in force, re-read at most every CACHE_SECONDS."""

    def __init__(self, base: Policy):
        self.base = base
        self._value: Policy | None = None
        self._read_at = 0.0

    def get(self, session: Session) -> Policy:
        if self._value is None or time.monotonic() - self._read_at > CACHE_SECONDS:
            self._value = policy_in_force(session, self.base)
            self._read_at = time.monotonic()
        return self._value

    def forget(self) -> None:
        self._value = None


def set_policy(session: Session, current: Policy, changes: dict[str, int], *, by: User, now: datetime,
               ip: str = "") -> Policy:
    """Record a new policy (the security administrator's act). ValueError names what is out of
    range; nothing is written then."""
    if by.admin_role != "security":
        raise PermissionError("only the security administrator sets the policy")
    problems = []
    for name, value in changes.items():
        if name not in BOUNDS:
            problems.append(f"unknown setting {name}")
            continue
        low, high = BOUNDS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(f"{LABELS[name][0]} 须在 {low}–{high} 之间")
    if problems:
        raise ValueError("；".join(problems))
    new = replace(current, **changes)
    changed = sorted(k for k in changes if getattr(current, k) != getattr(new, k))
    if changed:
        log(session, POLICY_EVENT, now=now, user=by, ip=ip, policy=asdict(new), changed=changed,
            previous={k: getattr(current, k) for k in changed})
    return new


# ---------------------------------------------------------------- what must be done first
def needs_second_factor(user: User) -> bool:
    """Administrators, SASAC members and compliance reviewers must use a second factor."""
    if user.admin_role:
        return True
    return any(m.department_code in SECOND_FACTOR_DEPARTMENTS or m.role in SECOND_FACTOR_ROLES
               for m in user.memberships)


def password_expired(user: User, now: datetime, policy: Policy) -> bool:
    changed = user.password_changed_at
    return changed is not None and now - changed > timedelta(days=policy.max_age_days)


def requirement(user: User, now: datetime, policy: Policy, *, enforce_second_factor: bool) -> str | None:
    """What this person must do before using anything else, or None."""
    if user.must_change_password:
        return PASSWORD_CHANGE
    if password_expired(user, now, policy):
        return PASSWORD_EXPIRED
    if enforce_second_factor and needs_second_factor(user) and not user.totp_secret:
        return TOTP_ENROLMENT
    return None


# ---------------------------------------------------------------- my sessions
@dataclass(frozen=True)
class SessionRow:
    id: str
    created_at: datetime
    last_seen_at: datetime
    ip: str
    user_agent: str
    current: bool

    @property
    def handle(self) -> str:
        """What the page shows and posts back: a prefix, never the whole id (the id is the key)."""
        return self.id[:12]


def live_sessions(session: Session, user: User, *, now: datetime, policy: Policy,
                  current_id: str | None = None) -> list[SessionRow]:
    idle = policy.admin_idle_minutes if user.admin_role else policy.idle_minutes
    rows = session.scalars(select(LoginSession).where(
        LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None),
        LoginSession.last_seen_at > now - timedelta(minutes=idle),
        LoginSession.created_at > now - timedelta(hours=policy.absolute_hours))
        .order_by(LoginSession.created_at.desc()))
    return [SessionRow(r.id, r.created_at, r.last_seen_at, r.ip, r.user_agent, r.id == current_id)
            for r in rows]


def end_own_session(session: Session, user: User, handle: str, *, now: datetime, ip: str = "") -> bool:
    """End one of `user`'s own sessions named by its handle; False if there is no such live
    session of theirs (someone else's handle is simply not found)."""
    if len(handle) < 12:
        return False
    target = session.scalar(select(LoginSession).where(
        LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None),
        LoginSession.id.startswith(handle[:12], autoescape=True)))
    if target is None:
        return False
    target.revoked_at = now
    log(session, "session_ended", now=now, user=user, ip=ip, session_handle=handle[:12])
    return True


def revoke_all(session: Session, user_id: int, *, now: datetime, keep: str | None = None) -> int:
    """End every live session of a user (password reset, disabling, second-factor reset)."""
    q = update(LoginSession).where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
    if keep:
        q = q.where(LoginSession.id != keep)
    return session.execute(q.values(revoked_at=now)).rowcount or 0
