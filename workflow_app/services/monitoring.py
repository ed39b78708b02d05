"""Park asset monitoring (园区资产动态监测): evaluating a period's indicators against the warning
rules, recording the warnings, opening rectification for red parks, and the dashboard figures.

`evaluate_period` runs in the caller's transaction (it flushes, never commits). Per park, in park
code order, it:
  1. locks the park row (`FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` already serialises writers), so
     two evaluations touching the same park — even of different periods — run one after the
     other and the "is a rectification already running?" check cannot race;
  2. grades the park with `domain.monitoring` and records a `ParkWarning` (unique per park and
     period: evaluating a period again changes nothing unless the figures or rules changed);
  3. closes the park's open warnings of earlier periods (`recovered` when the new grade is lower,
     `superseded` when the new period carries the warning on);
  4. for a red warning, opens `low_efficiency_rectification` for the park unless one is running.
Every raised, revised or closed warning and every rectification opened is one event on the system
trail chain, with the content hash of the rules file it was judged by.

Who submits the rectification: `Workflow.start` needs a user holding (department, submitter), and
the process routes its first step (the plan) to the owner group's head, whom the engine forbids to
decide an application they submitted. So the case is submitted for the owner group by its
项目填报人 (first active submitter by rank who is not also its head); the person who ran the
evaluation (`opened_by_user_id`, may be None for a scheduled run) is recorded in the trail events.
A group with no such submitter, or a builder that is not a department (a town platform), gets
its red warning recorded and a `park_rectification_not_opened` event; the next evaluation of the
period retries.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..domain.monitoring import (RULES_FILE, Assessment, Grade, ParkFacts, PeriodFigures, RuleSet,
                                 grade_rank, load_rules)
from ..domain.portfolio import (DEFAULT_DATA, FloorOccupancy, ParkOccupancy, PortfolioDef,
                                Share, load_file, period_end, whole_percent)
from ..models import (Building, Department, Membership, Park, ParkIndicator, ParkWarning,
                      ProcessInstance, Task, Unit, User)
from .trail import append_system_event
from .workflow import Workflow

RECTIFICATION = "low_efficiency_rectification"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # the warning date on the case is the district's date
_PERIOD = re.compile(r"\d{4}(Q[1-4]|-(0[1-9]|1[0-2]))")


@dataclass(frozen=True)
class ParkOutcome:
    park: str
    grade: str | None
    action: str  # raised | revised | unchanged | clear | closed (revised away)
    rectification_instance_id: int | None = None
    rectification_opened: bool = False
    note: str = ""


@dataclass
class Evaluation:
    period: str
    rules_hash: str
    parks: list[ParkOutcome] = field(default_factory=list)
    closed: list[tuple[str, str, str]] = field(default_factory=list)  # (park, period, reason)

    def by_grade(self) -> dict[str, int]:
        counts = {g.value: 0 for g in reversed(Grade)}
        for p in self.parks:
            if p.grade:
                counts[p.grade] += 1
        return counts


def rules_for(workflow: Workflow) -> RuleSet:
    """The rules file beside the workflow's process definitions."""
    return load_rules(workflow.store.directory / RULES_FILE)


def evaluate_period(session: Session, workflow: Workflow, period: str, now: datetime,
                    opened_by_user_id: int | None, *, rules: RuleSet | None = None) -> Evaluation:
    """Evaluate every park with indicators for `period`; see the module docstring."""
    if not _PERIOD.fullmatch(period):
        raise ValueError(f"not a period: {period!r} (use 2026Q3 or 2026-10)")
    end = period_end(period)
    rules = rules or rules_for(workflow)
    result = Evaluation(period, rules.content_hash)
    rows = session.execute(
        select(ParkIndicator, Park).join(Park, Park.id == ParkIndicator.park_id)
        .where(ParkIndicator.period == period).order_by(Park.code)).all()
    floor_areas = _floor_areas(session, [park.id for _, park in rows])
    for indicator, park in rows:
        session.execute(select(Park.id).where(Park.id == park.id).with_for_update())
        facts = ParkFacts(park.code, park.name, park.land_mu, park.factory_area_m2, park.opened_year,
                          floor_areas.get(park.id, {}))
        figures = PeriodFigures(period, indicator.occupancy_rate,
                                {int(k): Decimal(str(v)) for k, v in indicator.occupancy_by_floor.items()},
                                indicator.tax_wan, indicator.output_wan, indicator.jobs,
                                indicator.enterprises, indicator.lead_chain_share)
        assessment = rules.assess(facts, figures)
        outcome = _record(session, workflow, park, assessment, end, now, opened_by_user_id, rules,
                          result)
        result.parks.append(outcome)
    session.flush()
    return result


def _floor_areas(session: Session, park_ids: list[int]) -> dict[int, dict[int, Decimal]]:
    out: dict[int, dict[int, Decimal]] = {}
    if not park_ids:
        return out
    for park_id, floor, area in session.execute(
            select(Building.park_id, Unit.floor, func.sum(Unit.area_m2))
            .join(Unit, Unit.building_id == Building.id)
            .where(Building.park_id.in_(park_ids)).group_by(Building.park_id, Unit.floor)):
        out.setdefault(park_id, {})[floor] = Decimal(area)
    return out


def _event(session, now, action, actor_id, park: Park, period: str, rules_hash: str, **details):
    append_system_event(session, now=now, action=action, actor_id=actor_id,
                        details={"park": park.code, "period": period, "rules_hash": rules_hash,
                                 **details})


def _record(session: Session, workflow: Workflow, park: Park, a: Assessment, end, now: datetime,
            actor_id: int | None, rules: RuleSet, result: Evaluation) -> ParkOutcome:
    warning = session.scalar(select(ParkWarning).where(ParkWarning.park_id == park.id,
                                                       ParkWarning.period == a.period))
    grade = a.grade.value if a.grade else None
    if grade is None:
        action = "clear"
        if warning is not None and warning.status == "open":
            _close(session, warning, now, "revised", a.period, actor_id, rules, park, result)
            action = "closed"
        _close_earlier(session, park, end, None, a.period, now, actor_id, rules, result)
        return ParkOutcome(park.code, None, action)

    reasons = a.reasons
    if warning is None:
        later = session.scalar(select(ParkWarning.period).where(
            ParkWarning.park_id == park.id, ParkWarning.period_end > end)
            .order_by(ParkWarning.period_end.desc()).limit(1))
        warning = ParkWarning(park_id=park.id, period=a.period, period_end=end, grade=grade,
                              rule_ids=a.rule_ids, reasons=reasons, metrics=a.metrics_json(),
                              rules_hash=rules.content_hash, status="open", raised_at=now)
        if later is not None:  # evaluated out of order: a later period already speaks for the park
            warning.status, warning.closed_at = "closed", now
            warning.closed_reason, warning.closed_by_period = "superseded", later
        session.add(warning)
        session.flush()
        _event(session, now, "park_warning_raised", actor_id, park, a.period, rules.content_hash,
               grade=grade, rules=a.rule_ids, reasons=[r["zh"] for r in reasons],
               superseded_by=later)
        action = "raised"
    elif warning.status == "open" and (warning.grade, warning.rule_ids, warning.reasons,
                                       warning.rules_hash) != (grade, a.rule_ids, reasons,
                                                               rules.content_hash):
        previous = warning.grade
        warning.grade, warning.rule_ids, warning.reasons = grade, a.rule_ids, reasons
        warning.metrics, warning.rules_hash = a.metrics_json(), rules.content_hash
        session.flush()
        _event(session, now, "park_warning_revised", actor_id, park, a.period, rules.content_hash,
               grade=grade, previous_grade=previous, rules=a.rule_ids,
               reasons=[r["zh"] for r in reasons])
        action = "revised"
    else:
        action = "unchanged"
    _close_earlier(session, park, end, a.grade, a.period, now, actor_id, rules, result)

    opened, note = False, ""
    if a.grade is Grade.red and warning.status == "open" and warning.rectification_instance_id is None:
        warning.rectification_instance_id, opened, note = _rectify(
            session, workflow, park, warning, a, now, actor_id, rules, news=action != "unchanged")
        session.flush()
    return ParkOutcome(park.code, grade, action, warning.rectification_instance_id, opened, note)


def _close(session, warning: ParkWarning, now, reason: str, by_period: str, actor_id, rules,
           park: Park, result: Evaluation) -> None:
    warning.status, warning.closed_at = "closed", now
    warning.closed_reason, warning.closed_by_period = reason, by_period
    session.flush()
    _event(session, now, "park_warning_closed", actor_id, park, warning.period, rules.content_hash,
           grade=warning.grade, reason=reason, by_period=by_period)
    result.closed.append((park.code, warning.period, reason))


def _close_earlier(session, park: Park, end, grade: Grade | None, period: str, now, actor_id,
                   rules, result) -> None:
    """A later period speaks for the park now: its open warnings of earlier periods end."""
    for old in session.scalars(select(ParkWarning).where(
            ParkWarning.park_id == park.id, ParkWarning.status == "open",
            ParkWarning.period_end < end).order_by(ParkWarning.period_end)):
        reason = "recovered" if grade_rank(grade) < grade_rank(old.grade) else "superseded"
        _close(session, old, now, reason, period, actor_id, rules, park, result)


def running_rectification(session: Session, park_code: str) -> int | None:
    return session.scalar(select(ProcessInstance.id).where(
        ProcessInstance.process_key == RECTIFICATION, ProcessInstance.subject_ref == park_code,
        ProcessInstance.status == "running").order_by(ProcessInstance.id).limit(1))


def rectification_submitter(session: Session, group: str) -> int | None:
    """The owner group's first active submitter (by rank) who is not also its head."""
    heads = select(Membership.user_id).where(Membership.department_code == group,
                                             Membership.role == "head")
    return session.scalar(
        select(Membership.user_id).join(User, User.id == Membership.user_id)
        .where(Membership.department_code == group, Membership.role == "submitter",
               User.is_active.is_(True), Membership.user_id.not_in(heads))
        .order_by(Membership.rank, Membership.user_id).limit(1))


def _rectify(session, workflow: Workflow, park: Park, warning: ParkWarning, a: Assessment, now,
             actor_id, rules, news: bool) -> tuple[int | None, bool, str]:
    """Link the running rectification of the park, or open one; (instance id, opened, note).
    A case that cannot be opened is recorded once per raised or revised warning (`news`), not
    again on every retry, so re-evaluating an unchanged period leaves the trail as it was."""
    running = running_rectification(session, park.code)
    if running is not None:
        _event(session, now, "park_rectification_linked", actor_id, park, warning.period,
               rules.content_hash, instance=running)
        return running, False, f"rectification {running} already running"
    note = ""
    submitter = None
    if session.scalar(select(Department.id).where(Department.code == park.owner_group)) is None:
        note = f"owner {park.owner_group!r} is not a department: no one to route the case to"
    else:
        submitter = rectification_submitter(session, park.owner_group)
        if submitter is None:
            note = f"no active submitter (项目填报人) of {park.owner_group!r} who is not its head"
    if submitter is None:
        if news:
            _event(session, now, "park_rectification_not_opened", actor_id, park, warning.period,
                   rules.content_hash, reason=note)
        return None, False, note
    started = workflow.start(session, submitter, RECTIFICATION, rectification_data(park, a, now),
                             department=park.owner_group, subject_ref=park.code)
    _event(session, now, "park_rectification_opened", actor_id, park, warning.period,
           rules.content_hash, instance=started.instance_id, submitter=submitter)
    return started.instance_id, True, ""


def rectification_data(park: Park, a: Assessment, now: datetime) -> dict:
    """The case's opening form: the park, the grade, the reasons and the figures compared."""
    m = a.metrics
    local = (now if now.tzinfo else now.replace(tzinfo=timezone.utc)).astimezone(LOCAL_TZ)

    def text(name: str) -> str | None:
        value = m.get(name)
        return None if value is None else str(value)

    reasons = "；".join(h.reason_zh for h in a.hits)
    return {
        "park_name": park.name, "owner_group": park.owner_group,
        "warning_level": a.grade.label_zh if a.grade else None,
        "warning_date": local.date().isoformat(),
        "warning_reasons": f"{a.period}：{reasons}"[:2000],
        "tax_per_mu_wan": text("tax_per_mu_wan"), "output_per_mu_wan": text("output_per_mu_wan"),
        "occupancy_pct": text("occupancy_pct"),
        "upper_floor_occupancy_pct": text("upper_floor_occupancy_pct"),
        "agglomeration_pct": text("lead_chain_share_pct"),
        "enterprises": m.get("enterprises"), "jobs": m.get("jobs"),
    }


# --------------------------------------------------------------------------- dashboard

@dataclass(frozen=True)
class DashboardFigures:
    """What the dashboard charts show, computed from the database (not from the data file)."""

    factory_area_m2: Decimal
    by_location: tuple[Share, ...]
    by_lead_industry: tuple[Share, ...]
    by_builder: tuple[Share, ...]  # by SOE group: a subsidiary counts for its group
    occupancy: tuple[ParkOccupancy, ...]  # operating parks, per floor
    occupancy_all: ParkOccupancy  # the operating parks together
    warnings_by_grade: dict[str, int]  # open warnings: red, orange, yellow
    overdue_by_department: tuple[tuple[str, str, int], ...]  # (code, name, applications past due there)

    @staticmethod
    def top(slices: tuple[Share, ...], n: int = 2) -> tuple[list[str], Decimal]:
        """The n largest slices together, e.g. 智能制造 + 新材料 = 81 %."""
        chosen = slices[:n]
        return [s.key for s in chosen], sum((s.share for s in chosen), Decimal(0))

    def as_json(self) -> dict:
        def slices(items):
            return [{"key": s.key, "label": s.label, "area_m2": float(s.area_m2),
                     "share": float(s.share), "percent": s.percent} for s in items]

        def occupancy(o: ParkOccupancy):
            return {"park": o.park, "name": o.name, "rate": float(o.rate),
                    "ground_rate": float(o.ground.rate), "upper_rate": float(o.upper.rate),
                    "floors": [{"floor": f.floor, "area_m2": float(f.area_m2),
                                "occupied_m2": float(f.occupied_m2), "rate": float(f.rate)}
                               for f in o.floors]}

        top = {}
        for name, items in (("lead_industry", self.by_lead_industry), ("builder", self.by_builder)):
            keys, share = self.top(items)
            top[name] = {"keys": keys, "share": float(share), "percent": whole_percent(share)}
        return {
            "factory_area_m2": float(self.factory_area_m2),
            "by_location": slices(self.by_location), "by_lead_industry": slices(self.by_lead_industry),
            "by_builder": slices(self.by_builder), "top_two": top,
            "occupancy": [occupancy(o) for o in self.occupancy],
            "occupancy_all": occupancy(self.occupancy_all),
            "warnings_by_grade": dict(self.warnings_by_grade),
            "overdue_by_department": [{"department": c, "name": n, "count": k}
                                      for c, n, k in self.overdue_by_department],
        }


@lru_cache(maxsize=4)
def _catalogue(path: str) -> PortfolioDef:
    return load_file(path)


def dashboard_figures(session: Session, *, now: datetime | None = None,
                      catalogue: PortfolioDef | None = None) -> DashboardFigures:
    """Portfolio shares, occupancy by floor, open warnings and overdue approvals.

    Industry and non-department builder labels come from the portfolio data file (`catalogue`,
    default: the shipped one); department names and group links from the database."""
    now = now or datetime.now(timezone.utc)
    catalogue = catalogue or _catalogue(str(DEFAULT_DATA))
    departments = {d.code: d for d in session.scalars(select(Department))}

    def group(code: str) -> str:
        seen = set()
        while code in departments and departments[code].parent_code and code not in seen:
            seen.add(code)
            code = departments[code].parent_code  # type: ignore[assignment]
        return code

    def builder_label(code: str) -> str:
        if code in departments:
            return departments[code].name_zh
        return next((b.zh for b in catalogue.other_builders if b.code == code), code)

    parks = session.execute(select(Park.location, Park.lead_industry, Park.owner_group,
                                   Park.factory_area_m2)).all()
    total = sum((p.factory_area_m2 for p in parks), Decimal(0))

    def breakdown(key_of, label_of) -> tuple[Share, ...]:
        areas: dict[str, Decimal] = defaultdict(Decimal)
        for p in parks:
            areas[key_of(p)] += p.factory_area_m2
        return tuple(Share(k, label_of(k), a, a / total if total else Decimal(0))
                     for k, a in sorted(areas.items(), key=lambda kv: (-kv[1], kv[0])))

    occupancy = _occupancy(session)
    every_floor: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for o in occupancy:
        for f in o.floors:
            every_floor[f.floor][0] += f.area_m2
            every_floor[f.floor][1] += f.occupied_m2
    combined = ParkOccupancy("*", "已建成运营园区合计", tuple(
        FloorOccupancy(fl, a, o) for fl, (a, o) in sorted(every_floor.items())))

    warnings = {g.value: 0 for g in reversed(Grade)}
    for grade, count in session.execute(
            select(ParkWarning.grade, func.count()).where(ParkWarning.status == "open")
            .group_by(ParkWarning.grade)):
        warnings[grade] = count
    overdue = tuple(
        (dept, departments[dept].name_zh if dept in departments else dept, count)
        for dept, count in session.execute(
            # approvals, not tasks: a 或签 step opens one task per member, but it is one application
            # overdue at that department
            select(Task.department, func.count(func.distinct(Task.instance_id)).label("n"))
            .where(Task.status == "open", Task.due_at < now)
            .group_by(Task.department).order_by(func.count(func.distinct(Task.instance_id)).desc(),
                                                Task.department)))
    return DashboardFigures(
        factory_area_m2=total,
        by_location=breakdown(lambda p: p.location, lambda k: k),
        by_lead_industry=breakdown(lambda p: p.lead_industry, catalogue.industry_label),
        by_builder=breakdown(lambda p: group(p.owner_group), builder_label),
        occupancy=occupancy, occupancy_all=combined, warnings_by_grade=warnings,
        overdue_by_department=overdue)


def _occupancy(session: Session) -> tuple[ParkOccupancy, ...]:
    """Per floor of each operating park with units: let and sold units count as occupied."""
    occupied = func.sum(case((Unit.status != "vacant", Unit.area_m2), else_=0))
    rows = session.execute(
        select(Park.code, Park.name, Unit.floor, func.sum(Unit.area_m2), occupied)
        .join(Building, Building.park_id == Park.id).join(Unit, Unit.building_id == Building.id)
        .where(Park.stage == "operating")
        .group_by(Park.code, Park.name, Unit.floor).order_by(Park.code, Unit.floor)).all()
    parks: dict[tuple[str, str], list[FloorOccupancy]] = {}
    for code, name, floor, area, taken in rows:
        parks.setdefault((code, name), []).append(
            FloorOccupancy(floor, Decimal(area), Decimal(taken or 0)))
    return tuple(ParkOccupancy(code, name, tuple(floors)) for (code, name), floors in parks.items())
