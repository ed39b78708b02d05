"""Who am I, which definitions exist, and the trail check for compliance reviewers."""
from __future__ import annotations

from apiflask import APIBlueprint

from ..container import services
from ..engine.errors import Forbidden
from ..services import trail
from ..services.queries import OVERSIGHT_ADMINS, OVERSIGHT_ROLES
from .auth import auth, current
from .errors import COMMON
from .reads import definitions
from .schemas import DefinitionListOut, MeOut, VerifyOut

bp = APIBlueprint("api_meta", __name__, url_prefix="/api/v1", tag="Meta")


@bp.get("/me")
@bp.auth_required(auth)
@bp.output(MeOut)
@bp.doc(responses=COMMON)
def me():
    """The token's user, memberships and capacity"""
    who = current()
    return {"id": who.user_id, "username": who.username, "display_name": who.display_name,
            "admin_role": who.admin_role,
            "memberships": [{"department": d, "role": r} for d, r in who.memberships],
            "acting": {"department": who.acting_department, "role": who.acting_role},
            "token": {"id": who.token_id, "name": who.token_name, "expires_at": who.expires_at}}


@bp.get("/definitions")
@bp.auth_required(auth)
@bp.output(DefinitionListOut)
@bp.doc(responses=COMMON)
def list_definitions():
    """Stored process definitions, every revision

    `latest` marks the revision new instances start on; running instances keep theirs.
    """
    with services().db.read() as s:
        return {"items": definitions(s)}


@bp.post("/trail/verify")
@bp.auth_required(auth)
@bp.output(VerifyOut)
@bp.doc(responses=COMMON)
def verify_trail():
    """Verify every chain of the decision trail

    For compliance reviewers (membership role `compliance`) and the audit administrator
    (admin_role `audit`); others get 403. Reports the first broken event, if any. Reads only.
    """
    who = current()
    if who.admin_role not in OVERSIGHT_ADMINS and not any(who.holds_role(r) for r in OVERSIGHT_ROLES):
        raise Forbidden("only compliance reviewers and the audit administrator verify the trail",
                        "not_allowed")
    with services().db.read() as s:
        result = trail.verify(s)
    broken = result.broken
    return {"ok": result.ok, "checked": result.checked, "chains": result.chains,
            "broken": None if broken is None else {"event_id": broken.event_id, "seq": broken.seq,
                                                   "reason": broken.reason, "chain": result.chain}}
