"""The engine's `Directory` protocol over the database, cached for the length of one call."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine.errors import Forbidden
from ..engine.organisation import Organisation
from ..engine.state import Actor
from ..models import Membership, User


class SqlDirectory:
    def __init__(self, session: Session, organisation: Organisation):
        self.session = session
        self.org = organisation
        self.members = lru_cache(maxsize=256)(self._members)  # type: ignore[method-assign]
        self.user_groups = lru_cache(maxsize=1024)(self._user_groups)  # type: ignore[method-assign]

    def _members(self, department: str, role: str) -> tuple[int, ...]:
        rows = self.session.execute(
            select(Membership.user_id).join(User, User.id == Membership.user_id)
            .where(Membership.department_code == department, Membership.role == role,
                   User.is_active.is_(True))
            .order_by(Membership.rank, Membership.user_id))
        return tuple(r[0] for r in rows)

    def group_of(self, department: str) -> str:
        return self.org.group_of(department)

    def _user_groups(self, user_id: int) -> frozenset[str]:
        rows = self.session.execute(select(Membership.department_code).where(Membership.user_id == user_id))
        return frozenset(self.org.group_of(r[0]) for r in rows)


def load_actor(session: Session, user_id: int, *, department: str | None = None,
               role: str | None = None) -> tuple[User, Actor]:
    """The user and an engine Actor with their memberships (one query via selectin)."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise Forbidden("unknown or disabled user")
    memberships = frozenset((m.department_code, m.role) for m in user.memberships)
    if department is not None and (department, role) not in memberships:
        raise Forbidden(f"you are not a {role} of {department}")
    return user, Actor(user_id=user.id, name=user.display_name, memberships=memberships,
                       department=department, role=role, admin_role=user.admin_role)
