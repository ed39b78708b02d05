"""How the shipped processes and the park portfolio meet: which park an application is about
(`subject_ref`, so the park's dossier lists it), the facts a form takes from the portfolio rather
than from typing (an admission's owner group is the chosen park's), and what an approved ending
writes back (an admitted enterprise's tenancy; a rectified park's warning closed).

`Workflow` calls the three hooks inside the action's own transaction, so an application and the
portfolio never disagree: if recording the tenancy fails (the unit was let meanwhile), the
approval is refused and nothing of it is written.
- `prepare_start(session, spec, data)` -> (data, subject_ref): before the engine validates a start.
- `prepare_act(session, spec, state, request)` -> request: before the engine applies an action.
- `finished(session, state, actor, now)`: after an instance ended (any outcome).
Processes not named here pass through untouched (one dict lookup).
"""
from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..engine.errors import InvalidAction
from ..engine.runtime import Request
from ..engine.spec import ProcessSpec
from ..engine.state import Actor, InstanceState, InstanceStatus
from ..models import Building, Enterprise, Park, ParkWarning, ProcessInstance, Tenancy, Unit
from .matching import industry_code
from .trail import append_system_event

ADMISSION = "enterprise_admission"
RECTIFICATION = "low_efficiency_rectification"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
NO_PREFERENCE = "无明确意向"

# process key -> {form field naming a park: stages a park must be in (None: any stage)}.
# The first field with a known park gives the application's subject_ref.
PARK_FIELDS: dict[str, dict[str, tuple[str, ...] | None]] = {
    ADMISSION: {"park_name": ("operating",), "preferred_park": ("operating",)},
    "park_project_lifecycle": {"park_name": None},
    "investment_review": {"park_name": None},
    RECTIFICATION: {"park_name": None},
}
# Fields filled from the portfolio, never typed: (process key, field) -> shown read-only.
DERIVED_FIELDS = frozenset({(ADMISSION, "owner_group")})
_UNIT_SPLIT = re.compile(r"[\s,，、;；]+")


def park_fields(key: str) -> dict[str, tuple[str, ...] | None]:
    return PARK_FIELDS.get(key, {})


def find_park(session: Session, text: object) -> Park | None:
    """The park a form value names: its code (ZH-P01) or its exact name."""
    value = str(text or "").strip()
    if not value:
        return None
    return session.scalar(select(Park).where(or_(Park.code == value, Park.name == value)).limit(1))


def park_choices(session: Session, stages: tuple[str, ...] | None) -> list[tuple[str, str]]:
    """(value, label) for a park field's select: the parks of the portfolio, by code."""
    query = select(Park.name, Park.code, Park.location).order_by(Park.code)
    if stages:
        query = query.where(Park.stage.in_(stages))
    return [(name, f"{name}（{code}，{location}）") for name, code, location in session.execute(query)]


def subject_of(session: Session, key: str, data: dict) -> str | None:
    """The code of the park the application names, if the portfolio knows it."""
    for name in park_fields(key):
        park = find_park(session, data.get(name))
        if park is not None:
            return park.code
    return None


def _refuse(field: str, message: str) -> InvalidAction:
    return InvalidAction(message, fields={field: message})


def _checked_park(session: Session, key: str, field: str, value: object) -> Park | None:
    stages = park_fields(key).get(field)
    if value in (None, "") or (key == ADMISSION and str(value).strip() == NO_PREFERENCE):
        return None
    park = find_park(session, value)
    if park is None:
        if stages is None:
            return None  # a new project: not in the portfolio yet
        raise _refuse(field, f"no park {str(value)!r} in the portfolio")
    if stages is not None and park.stage not in stages:
        raise _refuse(field, f"park {park.code} is not operating yet")
    return park


# ------------------------------------------------------------------------------ hooks
def prepare_start(session: Session, spec: ProcessSpec, data: dict) -> tuple[dict, str | None]:
    fields = park_fields(spec.key)
    if not fields:
        return data, None
    data = dict(data)
    for name in fields:
        if name in data:
            _checked_park(session, spec.key, name, data.get(name))
    if spec.key == "park_project_lifecycle":
        park = find_park(session, data.get("park_name"))
        if park is not None:
            if data.get("owner_group") in (None, ""):
                data["owner_group"] = park.owner_group
            elif data["owner_group"] != park.owner_group:
                raise _refuse("owner_group", f"the portfolio names {park.owner_group} as the builder of {park.code}")
    if spec.key == ADMISSION:
        data.pop("owner_group", None)  # derived from the park matched at industry_fit
    return data, subject_of(session, spec.key, data)


def prepare_act(session: Session, spec: ProcessSpec, state: InstanceState, request: Request) -> Request:
    if spec.key != ADMISSION or not request.data:
        return request
    data = dict(request.data)
    data.pop("owner_group", None)
    if "park_name" in data:
        park = _checked_park(session, spec.key, "park_name", data["park_name"])
        if park is not None:
            data["owner_group"] = park.owner_group
            session.execute(update(ProcessInstance).where(ProcessInstance.id == state.id)
                            .values(subject_ref=park.code))
    if data.get("offered_units"):
        park = find_park(session, data.get("park_name") or state.data.get("park_name"))
        if park is None:
            raise _refuse("offered_units", "no park has been matched yet")
        units = offered_units(session, park, data["offered_units"])
        area = sum((u.area_m2 for u in units), Decimal(0))
        floors = sorted({u.floor for u in units})
        given_area = _decimal(data.get("offered_area_m2"))
        if given_area is None:
            data["offered_area_m2"] = f"{area.normalize():f}"
        elif given_area != area:
            raise _refuse("offered_area_m2", f"the units offered add up to {area.normalize():f} m²")
        if data.get("offered_floor") in (None, ""):
            data["offered_floor"] = floors[0]
        elif str(data["offered_floor"]) not in {str(f) for f in floors}:
            raise _refuse("offered_floor", f"the units offered are on floor {', '.join(map(str, floors))}")
    return dataclasses.replace(request, data=data)


def finished(session: Session, state: InstanceState, actor: Actor, now: datetime) -> None:
    if state.status is not InstanceStatus.approved:
        return
    if state.spec.key == ADMISSION:
        record_admission(session, state, actor, now)
    elif state.spec.key == RECTIFICATION:
        close_rectified_warnings(session, state, actor, now)


# ------------------------------------------------------------------------------ admission
def _decimal(value: object) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def offered_units(session: Session, park: Park, text: str) -> list[Unit]:
    """The units an offer names ("8-102" or "8-101、8-102"), each vacant in `park`, with a lock.
    Messages are English, as the engine's; web/messages.py gives them in Chinese."""
    numbers = [n for n in _UNIT_SPLIT.split(str(text).strip()) if n]
    if not numbers:
        raise _refuse("offered_units", "name the units, e.g. 8-102")
    rows = {u.number: u for u in session.scalars(
        select(Unit).join(Building, Building.id == Unit.building_id)
        .where(Building.park_id == park.id, Unit.number.in_(numbers)).with_for_update())}
    missing = [n for n in numbers if n not in rows]
    if missing:
        raise _refuse("offered_units", f"{park.code} has no unit {', '.join(missing)}")
    taken = [n for n in numbers if rows[n].status != "vacant"]
    if taken:
        raise _refuse("offered_units", f"not vacant: {', '.join(taken)}")
    return [rows[n] for n in dict.fromkeys(numbers)]


def record_admission(session: Session, state: InstanceState, actor: Actor, now: datetime) -> None:
    """准予入园: the enterprise (created from the application if new) becomes the tenant of the
    offered units from the approval date; one system trail event records it."""
    data = state.data
    park = find_park(session, data.get("park_name"))
    try:
        if park is None:
            raise _refuse("park_name", "the park matched is not in the portfolio")
        units = offered_units(session, park, str(data.get("offered_units") or ""))
    except InvalidAction as err:  # at the approval the offer is no longer a form being filled
        raise InvalidAction(f"cannot record the tenancy: {err.message}") from None
    code = str(data.get("credit_code") or "").strip()
    enterprise = session.scalar(select(Enterprise).where(Enterprise.credit_code == code))
    try:
        industry = industry_code(str(data.get("industry") or ""))
    except ValueError:
        industry = "other"
    if enterprise is None:
        enterprise = Enterprise(credit_code=code, name=str(data.get("enterprise_name") or code),
                                industry=industry, jobs=int(data.get("jobs") or 0),
                                illustrative=code.startswith("DEMO"))
        session.add(enterprise)
        session.flush()
    start = (now if now.tzinfo else now.replace(tzinfo=timezone.utc)).astimezone(LOCAL_TZ).date()
    for unit in units:
        unit.status, unit.tenant_id = "let", enterprise.id
        session.add(Tenancy(unit_id=unit.id, enterprise_id=enterprise.id, start_date=start))
    session.flush()
    append_system_event(session, now=now, action="park_tenancy_recorded", actor_id=actor.user_id or None,
                        details={"park": park.code, "instance": state.id, "enterprise": code,
                                 "units": [u.number for u in units], "start": start.isoformat()})


# ------------------------------------------------------------------------------ rectification
def close_rectified_warnings(session: Session, state: InstanceState, actor: Actor, now: datetime) -> None:
    """整改销号: the warnings this case was opened or linked for are closed as recovered."""
    for warning, code in session.execute(
            select(ParkWarning, Park.code).join(Park, Park.id == ParkWarning.park_id)
            .where(ParkWarning.rectification_instance_id == state.id, ParkWarning.status == "open")
            .order_by(ParkWarning.period_end)):
        warning.status, warning.closed_at, warning.closed_reason = "closed", now, "recovered"
        warning.closed_by_period = None
        session.flush()
        append_system_event(session, now=now, action="park_warning_closed",
                            actor_id=actor.user_id or None,
                            details={"park": code, "period": warning.period, "grade": warning.grade,
                                     "rules_hash": warning.rules_hash, "reason": "recovered",
                                     "rectification": state.id})


__all__ = ["PARK_FIELDS", "DERIVED_FIELDS", "prepare_start", "prepare_act", "finished",
           "subject_of", "park_choices", "find_park", "offered_units"]
