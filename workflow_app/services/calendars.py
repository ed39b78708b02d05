"""Official holiday schedules kept in the database, so every app process and host counts the same
working days.

The working calendar of the service is the file calendar (`process_defs/calendars`: chinesecalendar
plus `cn_<year>.yaml` plus the district's closures) with every `CalendarYear` row applied on top.
`flask calendar load FILE` validates a year's State Council schedule and stores it (a system trail
event `calendar_load` records the year and the hash); `deadlines.recompute_provisional` then moves
the due dates that were provisional because that year was unknown.

Each process re-reads the (tiny) table at most every `ttl` seconds (60 by default) rather than on
every action, and the sweeper always re-reads it (`force=True`). Why that TTL is safe across
processes and hosts:

* a year newly loaded: a process that has not seen it yet treats the year as unknown, so any due
  date reaching into it is marked provisional (never guessed silently), and the sweeper —
  reading the table afresh — recomputes it with a trail event on its next pass;
* a year replaced by a corrected schedule: due dates already computed are not moved by a
  replacement, whether they were computed a month or a second before the load; a stale process
  only widens that existing window by at most `ttl` seconds. Loading a correction is an
  administrator's act recorded in the trail (`calendar_load`, with the old and new hash), and the
  due dates it concerns can be found from it;
* the cache key is the table's (year, hash) pairs, so every process ends up with the same
  calendar within `ttl`, built from the database and nothing else.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine.calendar import CalendarError, WorkingCalendar, YearSchedule, parse_year_schedule
from ..models import CalendarYear
from .trail import append_system_event

log = logging.getLogger(__name__)


class CalendarYears:
    """The rows of `calendar_year`, cached per process and applied to a base calendar."""

    def __init__(self, ttl: float = 60.0):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._key: tuple[tuple[int, str], ...] | None = None
        self._schedules: tuple[YearSchedule, ...] = ()
        self._checked = float("-inf")
        self._built: tuple[WorkingCalendar, tuple, WorkingCalendar] | None = None

    def apply(self, session: Session | None, base: WorkingCalendar, *, force: bool = False) -> WorkingCalendar:
        """`base` with the loaded years; re-reads the table if `force` or the cache is stale."""
        if session is not None and (force or time.monotonic() - self._checked >= self.ttl):
            self.refresh(session)
        with self._lock:
            key = self._key or ()
            if self._built is not None and self._built[0] is base and self._built[1] == key:
                return self._built[2]
            calendar = base
            for schedule in self._schedules:
                calendar = calendar.with_schedule(schedule)
            self._built = (base, key, calendar)
            return calendar

    def refresh(self, session: Session) -> None:
        key = tuple(sorted((y, h) for y, h in session.execute(select(CalendarYear.year, CalendarYear.hash))))
        with self._lock:
            self._checked = time.monotonic()
            if key == self._key:
                return
        schedules = []
        for year, source in session.execute(select(CalendarYear.year, CalendarYear.source).order_by(CalendarYear.year)):
            try:
                schedules.append(parse_year_schedule(source, f"calendar_year:{year}"))
            except CalendarError:  # validated when loaded; never let one bad row stop approvals
                log.exception("calendar_year %s no longer parses; ignored", year)
        with self._lock:
            self._key, self._schedules = key, tuple(schedules)


@dataclass(frozen=True)
class LoadResult:
    year: int
    hash: str
    changed: bool
    source: str


def load_year(session: Session, text: str, *, now: datetime, by: str, source_name: str = "<upload>") -> LoadResult:
    """Validate and store one year's schedule (replacing that year). Raises CalendarError."""
    schedule = parse_year_schedule(text, source_name)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    row = session.execute(select(CalendarYear).where(CalendarYear.year == schedule.year)
                          .with_for_update()).scalar_one_or_none()
    if row is not None and row.hash == digest:
        return LoadResult(schedule.year, digest, False, schedule.source)
    replaced = row.hash if row is not None else None
    if row is None:
        session.add(CalendarYear(year=schedule.year, source=text, hash=digest, loaded_at=now, loaded_by=by))
    else:
        row.source, row.hash, row.loaded_at, row.loaded_by = text, digest, now, by
    session.flush()
    append_system_event(session, now=now, action="calendar_load", actor_name=by,
                        details={"year": schedule.year, "hash": digest, "source": schedule.source,
                                 "replaced": replaced, "file": source_name})
    return LoadResult(schedule.year, digest, True, schedule.source)


def stored_year(session: Session, year: int) -> CalendarYear | None:
    return session.get(CalendarYear, year)


# ---------------------------------------------------------------- what a year looks like
MISSING_NOTE = ("not loaded: only weekends are off; every due date reaching this year is "
                "provisional (暂定) and is recomputed, with a deadline_recomputed trail event, "
                "once the year's schedule is loaded")


@dataclass
class YearView:
    """Where one year's working days come from, and what they are (CLI `calendar show`, the
    administrator's calendar page)."""

    year: int
    origin: str                      # database | file | package | missing
    row: CalendarYear | None = None  # the stored schedule (origin "database")
    working_days: int = 0
    holidays: list[date] = field(default_factory=list)   # weekdays off
    makeup: list[date] = field(default_factory=list)     # 调休: weekend days that are working days

    @property
    def missing(self) -> bool:
        return self.origin == "missing"


def describe_year(calendar: WorkingCalendar, year: int, row: CalendarYear | None, files: Path | None) -> YearView:
    if row is not None:
        origin = "database"
    elif files is not None and (files / f"cn_{year}.yaml").exists():
        origin = "file"
    elif calendar.knows_year(year):
        origin = "package"
    else:
        origin = "missing"
    view = YearView(year, origin, row)
    day, end = date(year, 1, 1), date(year, 12, 31)
    while day <= end:
        works, _provisional = calendar.is_working_day_provisional(day)
        view.working_days += works
        if not works and day.weekday() < 5:
            view.holidays.append(day)
        if works and day.weekday() >= 5:
            view.makeup.append(day)
        day += timedelta(days=1)
    return view


def stored_years(session: Session) -> list[CalendarYear]:
    return list(session.scalars(select(CalendarYear).order_by(CalendarYear.year)))


def date_ranges(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days (a weekend inside a holiday keeps it one range) as (first, last)."""
    out: list[list[date]] = []
    for d in days:
        if out and (d - out[-1][-1]).days <= 3:
            out[-1].append(d)
        else:
            out.append([d])
    return [(r[0], r[-1]) for r in out]
