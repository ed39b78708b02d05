"""Statutory working-day clock: which days count, and when a time limit ends.

Owns: the national calendar (weekends off, statutory holidays off, 调休 make-up weekend days on),
year schedules loaded as data for years `chinesecalendar` does not know (the State Council notice,
from ``process_defs/calendars/cn_<year>.yaml`` or an uploaded string), the district's extra
closures (``zhenhai.yaml``), and the deadline rule. Pure: no Flask, no SQLAlchemy, no I/O except
``WorkingCalendar.from_directory``.

Deadline rule (民法典 第二百零一条: the day a period starts is not counted; 行政许可法 第八十二条:
limits count working days, statutory holidays excluded): a task opened at instant t with N working
days is due at the end of the N-th working day after t's local date, i.e. the next local midnight,
returned in UTC. A year nobody has loaded is never guessed silently: the weekends-only rule is used
and the result is marked provisional.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_EPSILON = timedelta(microseconds=1)
# Calendar files are a few KB; the limits stop alias bombs and deep nesting before composing.
_MAX_CHARS = 256 * 1024
_MAX_DEPTH = 8
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STR_TAG, _INT_TAG, _NULL_TAG = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "null"))


class CalendarError(ValueError):
    """Bad calendar data; the message reads ``file:line: key: problem``."""


class YearUnknown(LookupError):
    """No schedule is loaded for this year, so whether a day is worked cannot be said for sure."""

    def __init__(self, year: int) -> None:
        super().__init__(f"no holiday schedule loaded for {year}")
        self.year = year


@dataclass(frozen=True)
class HolidayPeriod:
    name: str
    days: tuple[date, ...]


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule. Dates may spill into the neighbouring years (the 2012
    notice made Saturday 2011-12-31 a working day); they apply to those dates."""

    year: int
    source: str
    holidays: tuple[HolidayPeriod, ...]
    workdays: frozenset[date]

    @property
    def off_days(self) -> frozenset[date]:
        return frozenset(d for period in self.holidays for d in period.days)


@dataclass(frozen=True)
class Closure:
    day: date
    reason: str


@dataclass(frozen=True)
class Deadline:
    due_at: datetime  # UTC-aware; the local midnight ending the last working day
    provisional: bool  # True if a day examined lies in a year without a loaded schedule
    working_days: int
    unknown_years: tuple[int, ...]


@dataclass(frozen=True)
class _YearTable:
    known: bool
    last: int  # ordinal of 31 December
    off: frozenset[int]  # ordinals of non-working days, for membership tests
    work: tuple[int, ...]  # sorted ordinals of working days, for bisecting


@cache
def _package_schedules() -> dict[int, YearSchedule]:
    """chinesecalendar's data regrouped per year once, so tables never call it per day."""
    first, last = min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year
    out: dict[int, YearSchedule] = {}
    for year in range(first, last + 1):
        by_name: dict[str, list[date]] = {}
        for day, name in chinese_calendar.holidays.items():
            if day.year == year:
                by_name.setdefault(name, []).append(day)
        out[year] = YearSchedule(
            year=year, source=f"chinesecalendar {chinese_calendar.__version__}",
            holidays=tuple(HolidayPeriod(n, tuple(sorted(ds))) for n, ds in by_name.items()),
            workdays=frozenset(d for d in chinese_calendar.workdays if d.year == year))
    return out


class WorkingCalendar:
    """Immutable working-day calendar. Per-year tables are built lazily, once per year; a race
    between threads at worst builds the same table twice, which is harmless."""

    def __init__(self, schedules: Iterable[YearSchedule] = (), closures: Iterable[date] = (),
                 tz: str = "Asia/Shanghai") -> None:
        self._schedules: dict[int, YearSchedule] = {s.year: s for s in schedules}  # later wins
        self._closures = frozenset(closures)
        self._tz_name = tz
        self._tz = ZoneInfo(tz)
        self._tables: dict[int, _YearTable] = {}

    @classmethod
    def from_directory(cls, path: str | Path, closures_file: str = "zhenhai.yaml",
                       tz: str = "Asia/Shanghai") -> WorkingCalendar:
        """Load every ``cn_<year>.yaml`` and the district closures file (optional) in ``path``."""
        folder = Path(path)
        schedules = []
        for file in sorted(folder.glob("cn_*.yaml")):
            schedule = parse_year_schedule(file.read_text(encoding="utf-8"), str(file))
            if file.stem != f"cn_{schedule.year}":
                raise CalendarError(f"{file}:1: year: file name does not match year {schedule.year}")
            schedules.append(schedule)
        closures_path = folder / closures_file
        closures = (parse_closures(closures_path.read_text(encoding="utf-8"), str(closures_path))
                    if closures_path.exists() else ())
        return cls(schedules, (c.day for c in closures), tz)

    def with_schedule(self, schedule: YearSchedule) -> WorkingCalendar:
        """A new calendar with ``schedule`` loaded (replacing any data for that year)."""
        return WorkingCalendar([*self._schedules.values(), schedule], self._closures, self._tz_name)

    def knows_year(self, year: int) -> bool:
        return year in self._schedules or year in _package_schedules()

    def local_date(self, instant: datetime) -> date:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError("instants must be timezone-aware")
        return instant.astimezone(self._tz).date()

    def is_working_day(self, day: date) -> bool:
        working, provisional = self.is_working_day_provisional(day)
        if provisional:
            raise YearUnknown(day.year)
        return working

    def is_working_day_provisional(self, day: date) -> tuple[bool, bool]:
        """(working, provisional); provisional days follow the weekends-only rule."""
        if isinstance(day, datetime):  # its date part may not be the local date: refuse
            raise TypeError("pass a local date; use local_date() for an instant")
        table = self._table(day.year)
        return day.toordinal() not in table.off, not table.known

    def add_working_days(self, opened_at: datetime, days: int) -> Deadline:
        """Deadline for ``days`` working days from ``opened_at``; never raises for unknown years."""
        if days < 0:
            raise ValueError("days must be >= 0")
        current = self.local_date(opened_at)
        ordinal, year, remaining, unknown = current.toordinal(), current.year, days, set()
        while remaining:  # jump year by year with bisect instead of walking day by day
            table = self._table(year)
            if ordinal < table.last and not table.known:
                unknown.add(year)
            start = bisect_right(table.work, ordinal)
            if remaining <= len(table.work) - start:
                ordinal, remaining = table.work[start + remaining - 1], 0
            else:
                remaining -= len(table.work) - start
                ordinal, year = table.last, year + 1
        end = datetime.combine(date.fromordinal(ordinal + 1), time(), tzinfo=self._tz)
        return Deadline(end.astimezone(timezone.utc), bool(unknown), days, tuple(sorted(unknown)))

    def working_days_between(self, start: datetime, end: datetime, *, strict: bool = False) -> int:
        """Working days from ``start`` to ``end``, signed (negative when ``end`` is earlier).

        Same counting as the deadline: the day ``start`` falls on is not counted, and an ``end``
        at local midnight closes the day before, so that for every t and n
        ``working_days_between(t, add_working_days(t, n).due_at) == n``. Unknown years use the
        weekends-only rule unless ``strict``, which raises YearUnknown instead.
        """
        if end < start:
            return -self.working_days_between(end, start, strict=strict)
        first, last = self.local_date(start), self.local_date(end - _EPSILON)
        total = 0
        for year in range(first.year, last.year + 1):
            table = self._table(year)
            lo = bisect_right(table.work, first.toordinal())
            hi = bisect_right(table.work, last.toordinal())
            if strict and not table.known and hi > lo:
                raise YearUnknown(year)
            total += max(hi - lo, 0)
        return total

    def _table(self, year: int) -> _YearTable:
        table = self._tables.get(year)
        if table is None:
            table = self._tables[year] = self._build(year)
        return table

    def _build(self, year: int) -> _YearTable:
        first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
        off = {o for o in range(first, last + 1) if (o - 1) % 7 >= 5}  # ordinal 1 was a Monday
        base = self._schedules.get(year) or _package_schedules().get(year)
        # Order matters only for spill-over dates: a later notice wins over an earlier one.
        for schedule in (self._schedules.get(year - 1), base, self._schedules.get(year + 1)):
            if schedule is not None:
                off |= {d.toordinal() for d in schedule.off_days if d.year == year}
                off -= {d.toordinal() for d in schedule.workdays if d.year == year}
        off |= {d.toordinal() for d in self._closures if d.year == year}  # district has last word
        work = tuple(o for o in range(first, last + 1) if o not in off)
        return _YearTable(self.knows_year(year), last, frozenset(off), work)


# ---- YAML loading: composed nodes keep line numbers for ``file:line: key`` messages ----------

def _compose(text: str, source: str) -> Node | None:
    if len(text) > _MAX_CHARS:
        raise CalendarError(f"{source}:1: <file>: more than {_MAX_CHARS} characters")
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise CalendarError(f"{source}:{line}: <yaml>: anchors and aliases are not allowed")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > _MAX_DEPTH:
                    raise CalendarError(f"{source}:{line}: <yaml>: nested too deeply")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise CalendarError(f"{source}:{line}: <yaml>: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise CalendarError(f"{source}:1: <yaml>: {exc}") from exc


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, node: Node, key: str, problem: str) -> CalendarError:
        return CalendarError(f"{self.source}:{node.start_mark.line + 1}: {key}: {problem}")

    def mapping(self, node: Node | None, key: str, allowed: set[str]) -> dict[str, Node]:
        """Keys of a mapping node; every allowed key is required."""
        if node is None:
            raise CalendarError(f"{self.source}:1: {key}: the file is empty")
        if not isinstance(node, MappingNode):
            raise self.error(node, key, "expected a mapping")
        out: dict[str, Node] = {}
        for key_node, value in node.value:
            name = key_node.value if isinstance(key_node, ScalarNode) else "?"
            path = f"{key}.{name}" if key != "<top>" else name
            if name not in allowed:
                raise self.error(key_node, path, f"unknown key (allowed: {', '.join(sorted(allowed))})")
            if name in out:
                raise self.error(key_node, path, "duplicate key")
            out[name] = value
        missing = sorted(allowed - out.keys())
        if missing:
            raise self.error(node, f"{key}.{missing[0]}" if key != "<top>" else missing[0], "missing key")
        return out

    def sequence(self, node: Node, key: str) -> list[Node]:
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
            return []
        if not isinstance(node, SequenceNode):
            raise self.error(node, key, "expected a list")
        return node.value

    def text(self, node: Node, key: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag != _STR_TAG or not node.value.strip():
            raise self.error(node, key, "expected non-empty text")
        return node.value.strip()

    def day(self, node: Node, key: str) -> date:
        value = node.value if isinstance(node, ScalarNode) else None
        try:
            if isinstance(value, str) and _DATE_RE.fullmatch(value):
                return date.fromisoformat(value)
        except ValueError:
            pass
        raise self.error(node, key, f"{value!r} is not a valid date (YYYY-MM-DD)")


def parse_year_schedule(text: str, source: str = "<string>") -> YearSchedule:
    """Parse one year's State Council schedule:
    ``{year: 2027, source: "...", holidays: [{name: 春节, days: [...]}], workdays: [...]}``."""
    r = _Reader(source)
    root = _compose(text, source)
    top = r.mapping(root, "<top>", {"year", "source", "holidays", "workdays"})
    node = top["year"]
    if not (isinstance(node, ScalarNode) and node.tag == _INT_TAG and re.fullmatch(r"\d{4}", node.value)):
        raise r.error(node, "year", "expected a four-digit year")
    year = int(node.value)
    seen: dict[date, str] = {}

    def take(node: Node, key: str) -> date:
        day = r.day(node, key)
        if abs(day.year - year) > 1:
            raise r.error(node, key, f"{day} is too far from {year}")
        if day in seen:
            raise r.error(node, key, f"{day} is already listed at {seen[day]}")
        seen[day] = key
        return day

    periods = []
    for i, item in enumerate(r.sequence(top["holidays"], "holidays")):
        fields = r.mapping(item, f"holidays[{i}]", {"name", "days"})
        name = r.text(fields["name"], f"holidays[{i}].name")
        days = r.sequence(fields["days"], f"holidays[{i}].days")
        if not days:
            raise r.error(fields["days"], f"holidays[{i}].days", "a holiday needs at least one day")
        periods.append(HolidayPeriod(name, tuple(take(n, f"holidays[{i}].days[{j}]")
                                                 for j, n in enumerate(days))))
    if not periods:  # a year with no holidays is surely a mistake, and would pass for data
        raise r.error(top["holidays"], "holidays", "a year schedule lists at least one holiday")
    workdays = set()
    for j, node in enumerate(r.sequence(top["workdays"], "workdays")):
        day = take(node, f"workdays[{j}]")
        if day.weekday() < 5:  # 调休 moves work onto a weekend; a weekday here is a typo
            raise r.error(node, f"workdays[{j}]", f"{day} is a weekday; make-up days are weekend days")
        workdays.add(day)
    return YearSchedule(year, r.text(top["source"], "source"), tuple(periods), frozenset(workdays))


def parse_closures(text: str, source: str = "<string>") -> tuple[Closure, ...]:
    """Parse the district closures file: ``closures: [{date, reason}]``."""
    r = _Reader(source)
    top = r.mapping(_compose(text, source), "<top>", {"closures"})
    out: dict[date, Closure] = {}
    for i, item in enumerate(r.sequence(top["closures"], "closures")):
        fields = r.mapping(item, f"closures[{i}]", {"date", "reason"})
        day = r.day(fields["date"], f"closures[{i}].date")
        if day in out:
            raise r.error(fields["date"], f"closures[{i}].date", f"{day} is listed twice")
        out[day] = Closure(day, r.text(fields["reason"], f"closures[{i}].reason"))
    return tuple(out.values())
