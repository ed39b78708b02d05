"""Accounts: password policy, login with lockout, server-side sessions, the security log.

Sessions live in the database (`login_session`); the cookie carries only the session id, so
logout, expiry and an administrator's revocation take effect on the next request of every copy of
the cookie (PITFALLS.md: Flask's signed-cookie session alone cannot be revoked).
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import LoginSession, SecurityEvent, User
from . import security_log

# The KDF and its parameters, stated rather than inherited from werkzeug's defaults (which may
# change between releases): scrypt with N=2^15, r=8, p=1 (about 32 MiB and 50-100 ms per hash).
HASH_METHOD = "scrypt:32768:8:1"
HISTORY = 5
MIN_LENGTH_FLOOR = 8  # nobody may configure a shorter minimum (PASSWORD_MIN_LENGTH)
_CLASSES = (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")


@dataclass(frozen=True)
class Policy:
    min_length: int = 12
    classes: int = 3
    max_failures: int = 5
    lock_minutes: int = 30
    idle_minutes: int = 30
    admin_idle_minutes: int = 15
    absolute_hours: int = 12
    max_age_days: int = 90


class LoginRefused(Exception):
    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.message = message
        self.reason = reason


def password_problems(password: str, username: str, policy: Policy,
                      history: list[str] | None = None) -> list[str]:
    problems = []
    if len(password) < policy.min_length:
        problems.append(f"至少 {policy.min_length} 个字符")
    if sum(1 for c in _CLASSES if re.search(c, password)) < policy.classes:
        problems.append(f"需包含大写字母、小写字母、数字、符号中的至少 {policy.classes} 类")
    if username and username.lower() in password.lower():
        problems.append("不能包含用户名")
    if any(check_password_hash(h, password) for h in (history or [])[:HISTORY]):
        problems.append(f"不能与最近 {HISTORY} 次使用过的密码相同")
    return problems


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


def set_password(user: User, password: str, now: datetime, *, policy: Policy,
                 must_change: bool = False) -> None:
    problems = password_problems(password, user.username, policy,
                                 [user.password_hash, *(user.password_history or [])] if user.password_hash else [])
    if problems:
        raise ValueError("；".join(problems))
    if user.password_hash:
        user.password_history = [user.password_hash, *(user.password_history or [])][:HISTORY]
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.must_change_password = must_change


def check_current_password(session: Session, user: User, password: str, *, now: datetime, ip: str,
                           policy: Policy) -> None:
    """A signed-in person proving their password again (changing it): a wrong one counts towards
    the same lock as a failed login, and reaching the limit ends every session of the account
    (LoginRefused reason `locked_out`). While the account is locked the change is refused
    (`locked`). The caller commits anyway so the failure is recorded."""
    check_lock(session, user, now=now, ip=ip)
    if check_password_hash(user.password_hash, password):
        return
    try:
        register_failure(session, user, now=now, ip=ip, policy=policy, reason="current_password")
    except LoginRefused as refused:
        if refused.reason != "locked":
            raise
        from .security import revoke_all
        revoke_all(session, user.id, now=now)
        # "locked_out": this guess locked the account and ended its sessions (the caller signs
        # the person out); a lock already in place (check_lock above) stays "locked"
        raise LoginRefused(refused.message, "locked_out") from None


def log(session: Session, event: str, *, now: datetime, user: User | None = None, username: str = "",
        ip: str = "", outcome: str = "ok", **details: object) -> None:
    """One security-log row; hash-chained when flushed (services/security_log.py)."""
    security_log.install()
    session.add(SecurityEvent(created_at=now, user_id=user.id if user else None,
                              username=user.username if user else username, ip=ip, event=event,
                              outcome=outcome, details=details))


def authenticate(session: Session, username: str, password: str, *, now: datetime, ip: str,
                 user_agent: str, policy: Policy) -> tuple[User, LoginSession]:
    """Check the password (with lockout) and open a server-side session. Raises LoginRefused.
    The caller commits even on refusal, so failures and locks are recorded. A user with a second
    factor needs `check_password`, then `security_codes.verify`, then `open_session`."""
    user = check_password(session, username, password, now=now, ip=ip, policy=policy)
    return user, open_session(session, user, now=now, ip=ip, user_agent=user_agent)


def check_password(session: Session, username: str, password: str, *, now: datetime, ip: str,
                   policy: Policy) -> User:
    """The first factor: the user if the password is right and the account is neither disabled
    nor locked. Every failure counts towards the lock (LoginRefused)."""
    user = session.scalar(select(User).where(User.username == username).with_for_update())
    if user is None or not user.is_active:
        check_password_hash(_DUMMY_HASH, password)  # same work either way: no user enumeration
        log(session, "login_failed", now=now, username=username[:64], ip=ip, outcome="refused")
        raise LoginRefused("用户名或密码错误", "bad_credentials")
    check_lock(session, user, now=now, ip=ip)
    if not check_password_hash(user.password_hash, password):
        register_failure(session, user, now=now, ip=ip, policy=policy, reason="password")
    return user


def check_lock(session: Session, user: User, *, now: datetime, ip: str) -> None:
    """LoginRefused while the account is locked; a lock that has run out is lifted (and logged)."""
    if user.locked_until and user.locked_until > now:
        log(session, "login_failed", now=now, user=user, ip=ip, outcome="refused", reason="locked")
        minutes = int((user.locked_until - now).total_seconds() // 60) + 1
        raise LoginRefused(f"账户已锁定，请 {minutes} 分钟后再试", "locked")
    if user.locked_until is not None:
        user.locked_until = None
        log(session, "unlocked", now=now, user=user, ip=ip, reason="lock expired")


def register_failure(session: Session, user: User, *, now: datetime, ip: str, policy: Policy,
                     reason: str) -> None:
    """Count a failed password or second-factor code; lock after `max_failures`. Always raises."""
    user.failed_logins += 1
    log(session, "login_failed", now=now, user=user, ip=ip, outcome="refused",
        failures=user.failed_logins, reason=reason)
    if user.failed_logins >= policy.max_failures:
        user.locked_until = now + timedelta(minutes=policy.lock_minutes)
        user.failed_logins = 0
        log(session, "locked", now=now, user=user, ip=ip, minutes=policy.lock_minutes)
        raise LoginRefused(f"连续失败 {policy.max_failures} 次，账户已锁定 {policy.lock_minutes} 分钟", "locked")
    if reason == "totp":
        raise LoginRefused("动态验证码不正确或已使用", "bad_code")
    raise LoginRefused("用户名或密码错误", "bad_credentials")


def open_session(session: Session, user: User, *, now: datetime, ip: str, user_agent: str,
                 **details: object) -> LoginSession:
    """Both factors passed: reset the failure count and open a server-side session."""
    user.failed_logins = 0
    user.locked_until = None
    first = next(iter(sorted(user.memberships, key=lambda m: (m.rank, m.id))), None)
    login = LoginSession(id=secrets.token_urlsafe(32), user_id=user.id, created_at=now,
                         last_seen_at=now, ip=ip[:64], user_agent=user_agent[:300],
                         acting_department=first.department_code if first else None,
                         acting_role=first.role if first else None)
    session.add(login)
    log(session, "login", now=now, user=user, ip=ip, **details)
    return login


_DUMMY_HASH = generate_password_hash("not-a-real-password", method=HASH_METHOD)


def resume(session: Session, session_id: str, *, now: datetime,
           policy: Policy) -> tuple[User, LoginSession] | None:
    """The user of a live session, or None when revoked, idle too long or past its absolute limit."""
    row = session.get(LoginSession, session_id)
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    idle = policy.admin_idle_minutes if user.admin_role else policy.idle_minutes
    if now - row.last_seen_at > timedelta(minutes=idle) or \
            now - row.created_at > timedelta(hours=policy.absolute_hours):
        row.revoked_at = now
        log(session, "session_expired", now=now, user=user, ip=row.ip)
        return None
    if now - row.last_seen_at > timedelta(seconds=60):  # one write a minute, not per request
        row.last_seen_at = now
    return user, row


def end_session(session: Session, session_id: str, *, now: datetime, by: User | None = None,
                ip: str = "") -> None:
    session.execute(update(LoginSession).where(LoginSession.id == session_id,
                                               LoginSession.revoked_at.is_(None)).values(revoked_at=now))
    if by is not None:
        log(session, "logout", now=now, user=by, ip=ip)
