"""API bearer tokens: issue, check, revoke.

A token is shown once, when it is created; only its SHA-256 is stored (`api_token.token_hash`),
so a copy of the database does not hand out working credentials. Tokens always expire (at most a
year), may be revoked, and may carry the capacity (department + role) their script acts in.
Looking a token up by its hash is safe against timing probes: the token has 256 bits of entropy,
so knowing how many leading hash characters matched tells an attacker nothing usable.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ..database import core_connection
from ..models import ApiToken, Membership, User
from . import accounts

PREFIX = "pf_"
MAX_DAYS = 365
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at: one write a minute, not per request


class TokenRefused(Exception):
    """The presented token does not authenticate. `reason`: missing, invalid, revoked, expired,
    inactive (account disabled), locked (account locked after failed logins)."""

    def __init__(self, reason: str, token_id: int | None = None, user_id: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.token_id = token_id
        self.user_id = user_id


@dataclass(frozen=True)
class TokenIdentity:
    """Who a valid token speaks for, with what they hold (read once per request)."""

    token_id: int
    token_name: str
    expires_at: datetime | None
    user_id: int
    username: str
    display_name: str
    admin_role: str | None
    memberships: tuple[tuple[str, str], ...]
    acting_department: str | None
    acting_role: str | None
    needs_touch: bool = False

    def holds_role(self, role: str) -> bool:
        return any(r == role for _d, r in self.memberships)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, user_id: int, name: str, days: int, department: str | None = None,
                 role: str | None = None, *, now: datetime | None = None) -> str:
    """Issue a token for `user_id`; return the plaintext (shown once, never stored)."""
    now = now or datetime.now(timezone.utc)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValueError("a token needs a name of 1 to 100 characters")
    if not 1 <= int(days) <= MAX_DAYS:
        raise ValueError(f"a token lasts 1 to {MAX_DAYS} days")
    if (department is None) != (role is None):
        raise ValueError("give both the department and the role the token acts in, or neither")
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise ValueError("unknown or disabled user")
    if department is not None and (department, role) not in {(m.department_code, m.role) for m in user.memberships}:
        raise ValueError(f"{user.username} is not a {role} of {department}")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), created_at=now,
                   expires_at=now + timedelta(days=int(days)), acting_department=department,
                   acting_role=role)
    session.add(row)
    session.flush()
    accounts.log(session, "api_token_created", now=now, user=user, token_id=row.id, name=name,
                 days=int(days), department=department, role=role)
    return token


def revoke_token(session: Session, token_id: int, *, now: datetime, by: User | None = None) -> bool:
    """Revoke a token; True if it was live. Takes effect on the token's next request."""
    done = session.execute(update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                           .values(revoked_at=now))
    if done.rowcount:
        accounts.log(session, "api_token_revoked", now=now, user=by, token_id=token_id)
    return bool(done.rowcount)


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))


# The token, its user and their memberships in ONE statement (LEFT JOINs: the refusal reasons
# below still tell an unknown user and a user without memberships apart). Built once.
_TOKENS, _USERS, _MEMBERSHIPS = ApiToken.__table__, User.__table__, Membership.__table__
_T, _U, _M = _TOKENS.c, _USERS.c, _MEMBERSHIPS.c
_IDENTIFY = (select(_T.id, _T.user_id, _T.name, _T.revoked_at, _T.expires_at, _T.last_used_at,
                    _T.acting_department, _T.acting_role, _U.id.label("known_user"), _U.username,
                    _U.display_name, _U.is_active, _U.locked_until, _U.admin_role, _M.department_code, _M.role)
             .select_from(_TOKENS.outerjoin(_USERS, _U.id == _T.user_id)
                          .outerjoin(_MEMBERSHIPS, _M.user_id == _U.id))
             .where(_T.token_hash == bindparam("token_hash"))
             .order_by(_M.rank, _M.id))


def identify(session: Session, token: str, *, now: datetime) -> TokenIdentity:
    """The identity behind a presented token, or TokenRefused. One read statement, so a read
    session (or `Database.peek()`) will do; when `needs_touch` is set the caller records the use
    with `touch` (one write a minute per token rather than one per request)."""
    if not token:
        raise TokenRefused("missing")
    if len(token) > 200:
        raise TokenRefused("invalid")
    rows = core_connection(session).execute(_IDENTIFY, {"token_hash": hash_token(token)}).all()
    if not rows:
        raise TokenRefused("invalid")
    row = rows[0]
    if row.revoked_at is not None:
        raise TokenRefused("revoked", row.id, row.user_id)
    if row.expires_at is not None and row.expires_at <= now:
        raise TokenRefused("expired", row.id, row.user_id)
    if row.known_user is None or not row.is_active:
        raise TokenRefused("inactive", row.id, row.user_id)
    if row.locked_until is not None and row.locked_until > now:
        # a lock stops the account's scripts too, else a token would bypass the lockout
        raise TokenRefused("locked", row.id, row.user_id)
    memberships = tuple((r.department_code, r.role) for r in rows if r.department_code is not None)
    department, role = row.acting_department, row.acting_role
    if department is not None and (department, role) not in memberships:
        department = role = None  # the membership was withdrawn since: act in no particular capacity
    return TokenIdentity(token_id=row.id, token_name=row.name, expires_at=row.expires_at, user_id=row.user_id,
                         username=row.username, display_name=row.display_name,
                         admin_role=row.admin_role, memberships=memberships,
                         acting_department=department, acting_role=role,
                         needs_touch=row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY)


def touch(session: Session, token_id: int, *, now: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
