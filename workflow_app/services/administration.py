"""What the three administrators may do (三员分立), each checked here, whatever page calls it:

- system (系统管理员): manages ordinary user accounts — create (with a one-time initial password
  that must be changed), disable / enable, reset a password. Cannot create or touch administrator
  accounts (else it could make itself an auditor), cannot read the security log, decides nothing.
- security (安全管理员): memberships (who holds which department role — a permission change),
  unlocking accounts, removing a lost second factor, the policy (services/security.py).
- audit (审计管理员): reads the security log (and the decision trail in the compliance console);
  changes nothing.

Administrator accounts hold no memberships: the engine decides by membership, so this is what
keeps administrators from deciding tasks; `set_memberships` refuses to give them any.
Every change is one security-log event with the administrator, the target and what changed.
"""
from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Membership, SecurityEvent, User
from . import second_factor
from .accounts import Policy, hash_password, log, password_problems
from .security import revoke_all

ADMIN_ROLES = ("system", "security", "audit")
LOG_PAGE = 100


class AdminRefused(ValueError):
    """The administrator may not do this, or the input is wrong; the message says which."""


def _require(by: User, role: str) -> None:
    if by is None or by.admin_role != role or not by.is_active:
        raise PermissionError(f"only the {role} administrator may do this")


def _ordinary(target: User | None) -> User:
    if target is None:
        raise AdminRefused("找不到该用户")
    if target.admin_role:
        raise AdminRefused("管理员账户不能在此修改（三员分立）")
    return target


def initial_password(policy: Policy) -> str:
    """A random password meeting the policy, shown once to the administrator."""
    alphabet = string.ascii_letters + string.digits + "#@%+=!?"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(max(14, policy.min_length)))
        if not password_problems(candidate, "", replace(policy, classes=4)):
            return candidate


# ---------------------------------------------------------------- the operator's command line
def create_administrator(session: Session, username: str, display_name: str, role: str, password: str, *,
                         now: datetime, policy: Policy, operator: str) -> User:
    """An administrator (三员) account made on the server's command line (`flask users
    create-admin`): how a production system gets its first administrators, since no default
    accounts exist there. The password is the operator's (checked against the policy, never
    taken from argv by the command); the account still has to enrol a second factor at its
    first sign-in. Logged as `admin_created` with the operating-system user who ran it."""
    username, display_name = (username or "").strip(), (display_name or "").strip()
    if role not in ADMIN_ROLES:
        raise AdminRefused(f"role must be one of {', '.join(ADMIN_ROLES)}")
    _check_new_account(session, username, display_name)
    problems = password_problems(password, username, policy)
    if problems:
        raise AdminRefused("；".join(problems))
    user = User(username=username, display_name=display_name, password_hash=hash_password(password),
                password_changed_at=now, must_change_password=False, created_at=now, admin_role=role)
    session.add(user)
    session.flush()
    log(session, "admin_created", now=now, username=f"cli:{operator}"[:64], ip="cli", target=username,
        target_id=user.id, role=role)
    return user


def _check_new_account(session: Session, username: str, display_name: str) -> None:
    """The rules every new account's name follows, whoever creates it."""
    if not (2 <= len(username) <= 64) or any(c not in string.ascii_letters + string.digits + "._-"
                                             for c in username):
        raise AdminRefused("用户名为 2–64 位字母、数字、点、下划线或连字符")
    if not (1 <= len(display_name) <= 100) or "\x00" in display_name:
        raise AdminRefused("姓名为 1–100 个字符")
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise AdminRefused("该用户名已存在")


# ---------------------------------------------------------------- system administrator
def create_user(session: Session, by: User, username: str, display_name: str, *, now: datetime,
                policy: Policy, email: str | None = None, ip: str = "") -> tuple[User, str]:
    _require(by, "system")
    username, display_name = (username or "").strip(), (display_name or "").strip()
    _check_new_account(session, username, display_name)
    password = initial_password(policy)
    user = User(username=username, display_name=display_name, email=(email or None),
                password_hash=hash_password(password), password_changed_at=now,
                must_change_password=True, created_at=now)
    session.add(user)
    session.flush()
    log(session, "user_created", now=now, user=by, ip=ip, target=username, target_id=user.id)
    return user, password


def set_active(session: Session, by: User, user_id: int, active: bool, *, now: datetime, ip: str = "") -> User:
    _require(by, "system")
    user = _ordinary(session.get(User, user_id))
    if user.is_active != active:
        user.is_active = active
        if not active:
            revoke_all(session, user.id, now=now)
        log(session, "user_enabled" if active else "user_disabled", now=now, user=by, ip=ip,
            target=user.username, target_id=user.id)
    return user


def reset_password(session: Session, by: User, user_id: int, *, now: datetime, policy: Policy,
                   ip: str = "") -> str:
    """A new one-time password (must be changed at next sign-in); every session of the user ends."""
    _require(by, "system")
    user = _ordinary(session.get(User, user_id))
    password = initial_password(policy)
    if user.password_hash:
        user.password_history = [user.password_hash, *(user.password_history or [])][:5]
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.must_change_password = True
    # A reset is how a locked-out person gets back in: the lock and the failure count go with the
    # old password (else the new one-time password would be refused until the lock ran out).
    was_locked = bool(user.locked_until and user.locked_until > now)
    user.locked_until = None
    user.failed_logins = 0
    revoke_all(session, user.id, now=now)
    log(session, "password_reset", now=now, user=by, ip=ip, target=user.username, target_id=user.id,
        was_locked=was_locked)
    return password


# ---------------------------------------------------------------- security administrator
def unlock(session: Session, by: User, user_id: int, *, now: datetime, ip: str = "") -> bool:
    _require(by, "security")
    user = session.get(User, user_id)
    if user is None:
        raise AdminRefused("找不到该用户")
    was_locked = bool(user.locked_until and user.locked_until > now)
    user.locked_until = None
    user.failed_logins = 0
    log(session, "unlocked", now=now, user=by, ip=ip, target=user.username, target_id=user.id,
        reason="security administrator", was_locked=was_locked)
    return was_locked


def set_memberships(session: Session, by: User, user_id: int, wanted: list[tuple[str, str]],
                    *, known_departments: set[str], known_roles: set[str], now: datetime,
                    ip: str = "") -> tuple[list, list]:
    """Make the user's memberships exactly `wanted`; returns (added, removed). A permission
    change: logged with both lists. The user's sessions end (their capacities changed)."""
    _require(by, "security")
    user = _ordinary(session.get(User, user_id))
    wanted = list(dict.fromkeys((d.strip(), r.strip()) for d, r in wanted))
    bad = [f"{d}/{r}" for d, r in wanted if d not in known_departments or r not in known_roles]
    if bad:
        raise AdminRefused("未知的部门或角色：" + "、".join(bad))
    if len(wanted) > 20:
        raise AdminRefused("一个人最多 20 个身份")
    current = {(m.department_code, m.role): m for m in user.memberships}
    added = [p for p in wanted if p not in current]
    removed = [p for p in current if p not in wanted]
    if not added and not removed:
        return [], []
    for pair in removed:
        user.memberships.remove(current[pair])
    rank = max((m.rank for m in user.memberships), default=0)
    for d, r in added:
        user.memberships.append(Membership(department_code=d, role=r, rank=rank))
    session.flush()
    revoke_all(session, user.id, now=now)
    log(session, "permission_changed", now=now, user=by, ip=ip, target=user.username, target_id=user.id,
        added=[list(p) for p in added], removed=[list(p) for p in removed])
    return added, removed


def remove_second_factor(session: Session, by: User, user_id: int, *, now: datetime, ip: str = "") -> None:
    _require(by, "security")
    user = session.get(User, user_id)
    if user is None or user.id == by.id:
        raise AdminRefused("找不到该用户，或不能重置自己的动态验证码")
    second_factor.remove(session, user, now, by=by, ip=ip)
    revoke_all(session, user.id, now=now)


# ---------------------------------------------------------------- audit administrator
@dataclass
class LogQuery:
    event: str | None = None
    username: str | None = None
    outcome: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    before_id: int | None = None


def security_log(session: Session, by: User, q: LogQuery, *, tz=timezone.utc) -> list[SecurityEvent]:
    """Newest first, LOG_PAGE at a time (keyset on id). Only the audit administrator."""
    _require(by, "audit")
    stmt = select(SecurityEvent)
    if q.event:
        stmt = stmt.where(SecurityEvent.event == q.event)
    if q.username:
        stmt = stmt.where(SecurityEvent.username == q.username)
    if q.outcome:
        stmt = stmt.where(SecurityEvent.outcome == q.outcome)
    if q.date_from:
        stmt = stmt.where(SecurityEvent.created_at >= datetime.combine(q.date_from, time(), tz))
    if q.date_to:
        stmt = stmt.where(SecurityEvent.created_at < datetime.combine(q.date_to, time(), tz) + timedelta(days=1))
    if q.before_id:
        stmt = stmt.where(SecurityEvent.id < q.before_id)
    return list(session.scalars(stmt.order_by(SecurityEvent.id.desc()).limit(LOG_PAGE + 1)))


def users(session: Session, *, search: str | None = None, limit: int = 200) -> list[User]:
    stmt = select(User)
    if search:
        like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(User.username.like(like, escape="\\") | User.display_name.like(like, escape="\\"))
    return list(session.scalars(stmt.order_by(User.username).limit(limit)))
