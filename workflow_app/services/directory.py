"""The engine's `Directory` protocol over the database, cached for the length of one call, and
the acting user (`load_actor`).

These run on every action, so each statement is a `Prepared` one (compiled once per dialect, run
on the DBAPI cursor of the session's cached connection) — plain rows, no ORM entities.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..database import core_connection
from ..engine.errors import Forbidden
from ..engine.organisation import Organisation
from ..engine.state import Actor
from ..models import Membership, User
from ..prepared import Prepared

_USERS, _MEMBERSHIPS = User.__table__, Membership.__table__
_U, _M = _USERS.c, _MEMBERSHIPS.c

_MEMBERS = Prepared(select(_M.user_id).select_from(_MEMBERSHIPS.join(_USERS, _U.id == _M.user_id))
            .where(_M.department_code == bindparam("department"), _M.role == bindparam("role"),
                   _U.is_active.is_(True))
            .order_by(_M.rank, _M.user_id))
_USER_DEPARTMENTS = Prepared(select(_M.department_code).where(_M.user_id == bindparam("user_id")))
# The user and every membership in one statement (LEFT JOIN: a user may hold none).
class _ActorRow(NamedTuple):
    id: int
    username: str
    display_name: str
    is_active: bool
    admin_role: str | None
    department_code: str | None
    role: str | None


_ACTOR = Prepared(select(_U.id, _U.username, _U.display_name, _U.is_active, _U.admin_role, _M.department_code,
                         _M.role)
                  .select_from(_USERS.outerjoin(_MEMBERSHIPS, _M.user_id == _U.id))
                  .where(_U.id == bindparam("user_id"))
                  .order_by(_M.rank, _M.id), row=_ActorRow)


class SqlDirectory:
    def __init__(self, session: Session, organisation: Organisation):
        self.session = session
        self.org = organisation
        self.members = lru_cache(maxsize=256)(self._members)  # type: ignore[method-assign]
        self.user_groups = lru_cache(maxsize=1024)(self._user_groups)  # type: ignore[method-assign]

    def _members(self, department: str, role: str) -> tuple[int, ...]:
        rows = _MEMBERS.all(core_connection(self.session), {"department": department, "role": role})
        return tuple(r[0] for r in rows)

    def group_of(self, department: str) -> str:
        return self.org.group_of(department)

    def _user_groups(self, user_id: int) -> frozenset[str]:
        rows = _USER_DEPARTMENTS.all(core_connection(self.session), {"user_id": user_id})
        return frozenset(self.org.group_of(r[0]) for r in rows)


class ActingUser(NamedTuple):
    """The columns of the acting user that actions need (not the ORM entity)."""

    id: int
    username: str
    display_name: str
    admin_role: str | None


def load_actor(session: Session, user_id: int, *, department: str | None = None,
               role: str | None = None) -> tuple[ActingUser, Actor]:
    """The user and an engine Actor with their memberships, in one query. Forbidden for an
    unknown or disabled user, and when `department`/`role` is given but not held."""
    rows = _ACTOR.all(core_connection(session), {"user_id": user_id})
    if not rows or not rows[0].is_active:
        raise Forbidden("unknown or disabled user", "not_allowed")
    memberships = frozenset((r.department_code, r.role) for r in rows if r.department_code is not None)
    if department is not None and (department, role) not in memberships:
        raise Forbidden(f"you are not a {role} of {department}", "no_role")
    first = rows[0]
    user = ActingUser(first.id, first.username, first.display_name, first.admin_role)
    return user, Actor(user_id=user.id, name=user.display_name, memberships=memberships,
                       department=department, role=role, admin_role=user.admin_role)
