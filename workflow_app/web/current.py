"""The signed-in person, as the web layer sees them: a Flask-Login user backed by a server-side
session row, with the department and role they are acting in."""
from __future__ import annotations

from dataclasses import dataclass

from flask import abort
from flask_login import current_user


@dataclass
class SignedIn:
    id: int
    username: str
    display_name: str
    admin_role: str | None
    memberships: tuple[tuple[str, str], ...]
    session_id: str
    acting_department: str | None
    acting_role: str | None
    must_change_password: bool = False
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        # Flask-Login stores this in the cookie: the revocable session id, never the user id.
        return self.session_id

    def holds(self, department: str, role: str) -> bool:
        return (department, role) in self.memberships

    def has_role(self, role: str) -> bool:
        return any(r == role for _d, r in self.memberships)


def me() -> SignedIn:
    if not current_user.is_authenticated:
        abort(401)
    return current_user._get_current_object()  # type: ignore[attr-defined]


def require_admin(*roles: str) -> SignedIn:
    user = me()
    if user.admin_role not in roles:
        abort(403)
    return user
