"""Working-day clock: real 2025/2026 holidays with 调休, unknown years, loaded schedules, closures,
calendar-file validation. Pure date math: no clock is read, so nothing is frozen or slept."""

from __future__ import annotations

import ast
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_app.engine.calendar import (
    CalendarError,
    Deadline,
    WorkingCalendar,
    YearUnknown,
    parse_closures,
    parse_year_schedule,
)

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")

# A made-up 2027 schedule for tests only: the real notice is not published in our data.
FIXTURE_2027 = """\
year: 2027
source: "TEST FIXTURE, not the State Council notice"
holidays:
  - name: 元旦
    days: [2027-01-01, 2027-01-02, 2027-01-03]
  - name: 春节
    days: [2027-02-06, 2027-02-07, 2027-02-08, 2027-02-09, 2027-02-10, 2027-02-11, 2027-02-12]
workdays: [2027-02-20]
"""


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def end_of(day: date) -> datetime:
    """The UTC instant at which local ``day`` ends (Shanghai is UTC+8, no DST)."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(hours=16)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar()


def test_agrees_with_chinesecalendar_for_every_day_it_knows(cal: WorkingCalendar) -> None:
    day = date(2004, 1, 1)
    while day.year <= 2026:
        assert cal.is_working_day(day) is chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_package_data_verified_for_2025_and_2026(cal: WorkingCalendar) -> None:
    # Spring Festival 2026: off 02-15..02-23, make-up Saturdays 02-14 and 02-28.
    assert not any(cal.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    assert cal.is_working_day(date(2026, 2, 14)) and cal.is_working_day(date(2026, 2, 28))
    # National Day + Mid-autumn 2025: off 10-01..10-08, make-up Sun 09-28 and Sat 10-11.
    assert not any(cal.is_working_day(date(2025, 10, d)) for d in range(1, 9))
    assert cal.is_working_day(date(2025, 9, 28)) and cal.is_working_day(date(2025, 10, 11))
    assert not cal.is_working_day(date(2025, 9, 27))  # an ordinary Saturday


def test_spring_festival_2026(cal: WorkingCalendar) -> None:
    # Thu 02-12 opened; counts Fri 13, make-up Sat 14, then (15..23 off) Tue 24, Wed 25, Thu 26.
    deadline = cal.add_working_days(local(2026, 2, 12, 10, 30), 5)
    assert deadline == Deadline(end_of(date(2026, 2, 26)), False, 5, ())
    assert deadline.due_at == datetime(2026, 2, 26, 16, 0, tzinfo=timezone.utc)
    assert cal.add_working_days(local(2026, 2, 12, 10, 30), 2).due_at == end_of(date(2026, 2, 14))
    assert cal.add_working_days(local(2026, 2, 12, 10, 30), 3).due_at == end_of(date(2026, 2, 24))


@pytest.mark.parametrize(("opened", "days", "due"), [
    (date(2025, 9, 26), 1, date(2025, 9, 28)),  # Sat 27 off, Sun 28 make-up day
    (date(2025, 9, 26), 3, date(2025, 9, 30)),
    (date(2025, 9, 30), 1, date(2025, 10, 9)),  # 10-01..10-08 off
    (date(2025, 9, 30), 3, date(2025, 10, 11)),  # Sat 10-11 make-up day
    (date(2025, 9, 30), 4, date(2025, 10, 13)),  # Sun 10-12 off again
])
def test_national_day_2025(cal: WorkingCalendar, opened: date, days: int, due: date) -> None:
    assert cal.add_working_days(local(opened.year, opened.month, opened.day, 9), days).due_at == end_of(due)


def test_weekend(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(local(2025, 3, 14, 17), 1).due_at == end_of(date(2025, 3, 17))  # Fri -> Mon
    assert cal.add_working_days(local(2025, 3, 15, 9), 1).due_at == end_of(date(2025, 3, 17))  # Sat -> Mon
    assert cal.add_working_days(local(2025, 3, 14, 17), 5).due_at == end_of(date(2025, 3, 21))


def test_zero_days_is_end_of_opening_day_even_on_a_holiday(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(local(2026, 2, 17, 23, 59), 0) == Deadline(end_of(date(2026, 2, 17)), False, 0, ())


def test_local_date_decides_not_utc_date(cal: WorkingCalendar) -> None:
    # 2026-02-12 17:00Z is already Fri 02-13 01:00 in Ningbo: the opening day is the 13th.
    deadline = cal.add_working_days(datetime(2026, 2, 12, 17, tzinfo=timezone.utc), 1)
    assert deadline.due_at == end_of(date(2026, 2, 14))
    with pytest.raises(ValueError):
        cal.add_working_days(datetime(2026, 2, 12, 10), 1)  # naive
    with pytest.raises(ValueError):
        cal.add_working_days(local(2026, 2, 12), -1)


def test_span_into_unknown_year_is_provisional_and_loading_it_fixes_the_date(cal: WorkingCalendar) -> None:
    opened = local(2026, 12, 15, 10)
    # 12 working days left in Dec 2026, then weekends only: Fri 01-01 counts, due Tue 01-26.
    guess = cal.add_working_days(opened, 30)
    assert guess == Deadline(end_of(date(2027, 1, 26)), True, 30, (2027,))
    assert cal.add_working_days(opened, 12) == Deadline(end_of(date(2026, 12, 31)), False, 12, ())

    loaded = cal.with_schedule(parse_year_schedule(FIXTURE_2027))
    assert loaded.knows_year(2027) and not cal.knows_year(2027)  # original left untouched
    assert loaded.add_working_days(opened, 30) == Deadline(end_of(date(2027, 1, 27)), False, 30, ())
    assert cal.add_working_days(opened, 30) == guess
    # The fixture's make-up Saturday counts, its holidays do not.
    assert loaded.is_working_day(date(2027, 2, 20)) and not loaded.is_working_day(date(2027, 2, 8))


def test_unknown_year_queries(cal: WorkingCalendar) -> None:
    with pytest.raises(YearUnknown) as info:
        cal.is_working_day(date(2027, 1, 4))
    assert info.value.year == 2027 and isinstance(info.value, LookupError)
    assert cal.is_working_day_provisional(date(2027, 1, 4)) == (True, True)
    assert cal.is_working_day_provisional(date(2027, 1, 9)) == (False, True)
    assert cal.is_working_day_provisional(date(2026, 2, 14)) == (True, False)
    assert cal.knows_year(2004) and cal.knows_year(2026) and not cal.knows_year(2003)
    # Opened on the last day of an unknown year: no day of that year is examined.
    assert cal.add_working_days(local(2026, 12, 31, 9), 0).unknown_years == ()


def test_loaded_schedule_overrides_package_year(cal: WorkingCalendar) -> None:
    # A pretend correction notice for 2026: it replaces the package's whole year.
    text = "year: 2026\nsource: test\nholidays: [{name: x, days: [2026-02-13]}]\nworkdays: [2026-02-21]\n"
    corrected = cal.with_schedule(parse_year_schedule(text))
    assert cal.is_working_day(date(2026, 2, 13)) and not corrected.is_working_day(date(2026, 2, 13))
    assert not cal.is_working_day(date(2026, 2, 21)) and corrected.is_working_day(date(2026, 2, 21))
    assert cal.is_working_day(date(2026, 2, 14)) and not corrected.is_working_day(date(2026, 2, 14))
    assert corrected.is_working_day(date(2026, 2, 16))  # the package's Spring Festival is gone


def test_schedule_dates_spilling_into_a_neighbour_year_apply_there(cal: WorkingCalendar) -> None:
    # Like the 2012 notice making Sat 2011-12-31 a working day.
    spill = parse_year_schedule(FIXTURE_2027.replace("workdays: [2027-02-20]", "workdays: [2026-12-26]"))
    assert not cal.is_working_day(date(2026, 12, 26))
    assert cal.with_schedule(spill).is_working_day(date(2026, 12, 26))
    into_unknown = "year: 2028\nsource: t\nholidays: [{name: a, days: [2028-01-03]}]\nworkdays: [2027-12-25]\n"
    assert cal.with_schedule(parse_year_schedule(into_unknown)).is_working_day_provisional(date(2027, 12, 25)) == (True, True)


def test_district_closure_shifts_deadline(tmp_path: Path) -> None:
    (tmp_path / "zhenhai.yaml").write_text(
        "closures:\n  - date: 2026-02-25\n    reason: 台风停工\n", encoding="utf-8")
    closed = WorkingCalendar.from_directory(tmp_path)
    assert not closed.is_working_day(date(2026, 2, 25))
    assert closed.add_working_days(local(2026, 2, 12, 10), 5).due_at == end_of(date(2026, 2, 27))


def test_from_directory_loads_year_files(tmp_path: Path) -> None:
    (tmp_path / "cn_2027.yaml").write_text(FIXTURE_2027, encoding="utf-8")
    loaded = WorkingCalendar.from_directory(tmp_path)  # no zhenhai.yaml: no closures
    assert loaded.add_working_days(local(2026, 12, 15, 10), 30).provisional is False
    (tmp_path / "cn_2028.yaml").write_text(FIXTURE_2027, encoding="utf-8")
    with pytest.raises(CalendarError, match=r"cn_2028\.yaml:1: year: file name"):
        WorkingCalendar.from_directory(tmp_path)


def test_repository_calendar_directory_is_valid() -> None:
    assert WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars").knows_year(2026)


@pytest.mark.parametrize(("bad", "good", "where"), [
    ("2027-02-09, 2027-02-10", "2027-02-09, 2027-02-30", r"cn_2027\.yaml:7: holidays\[1\]\.days\[4\]: '2027-02-30' is not a valid date"),
    ("workdays: [2027-02-20]", "workdays: [2027-2-20]", r":8: workdays\[0\]: '2027-2-20' is not a valid date"),
    ("workdays: [2027-02-20]", "workdays: [2027-02-19]", r":8: workdays\[0\]: 2027-02-19 is a weekday"),
    ("workdays: [2027-02-20]", "workdays: [2027-02-07]", r":8: workdays\[0\]: 2027-02-07 is already listed at holidays\[1\]\.days\[1\]"),
    ("  - name: 春节\n", "  - name: 春节\n    note: x\n", r":7: holidays\[1\]\.note: unknown key \(allowed: days, name\)"),
    ("source:", "sauce:", r":2: sauce: unknown key"),
    ("year: 2027", "year: '2027'", r":1: year: expected a four-digit year"),
    ("workdays: [2027-02-20]\n", "workdays: [2027-02-20\n", r"cn_2027\.yaml:\d+: <yaml>: "),
    ("  - name: 元旦\n", "  - name: &a 元旦\n", r":4: <yaml>: anchors and aliases"),
])
def test_bad_year_schedule_names_file_line_key(bad: str, good: str, where: str) -> None:
    assert bad in FIXTURE_2027
    with pytest.raises(CalendarError, match=where):
        parse_year_schedule(FIXTURE_2027.replace(bad, good, 1), source="calendars/cn_2027.yaml")


def test_year_schedule_needs_holidays_and_all_keys() -> None:
    with pytest.raises(CalendarError, match=r"<string>:3: holidays: .*at least one holiday"):
        parse_year_schedule("year: 2027\nsource: x\nholidays: []\nworkdays: []\n")
    with pytest.raises(CalendarError, match=r"<string>:1: workdays: missing key"):
        parse_year_schedule("year: 2027\nsource: x\nholidays: [{name: a, days: [2027-01-01]}]\n")
    with pytest.raises(CalendarError, match=r"<string>:1: <top>: the file is empty"):
        parse_year_schedule("")


@pytest.mark.parametrize(("text", "where"), [
    ("closures:\n  - date: 2026-13-01\n    reason: x\n", r"zhenhai\.yaml:2: closures\[0\]\.date: '2026-13-01' is not a valid date"),
    ("closures:\n  - date: 2026-05-06\n    why: x\n", r"zhenhai\.yaml:3: closures\[0\]\.why: unknown key"),
    ("closures:\n  - date: 2026-05-06\n", r"zhenhai\.yaml:2: closures\[0\]\.reason: missing key"),
    ("closures:\n  - {date: 2026-05-06, reason: a}\n  - {date: 2026-05-06, reason: b}\n",
     r"zhenhai\.yaml:3: closures\[1\]\.date: 2026-05-06 is listed twice"),
    ("closures: {}\n", r"zhenhai\.yaml:1: closures: expected a list"),
])
def test_bad_closures_name_file_line_key(text: str, where: str) -> None:
    with pytest.raises(CalendarError, match=where):
        parse_closures(text, source="process_defs/calendars/zhenhai.yaml")


def test_working_days_between_is_signed(cal: WorkingCalendar) -> None:
    opened = local(2026, 2, 12, 10, 30)
    due = cal.add_working_days(opened, 5).due_at
    assert cal.working_days_between(opened, due) == 5
    assert cal.working_days_between(due, opened) == -5
    assert cal.working_days_between(opened, opened) == 0
    # Days left on Tue 02-24 (the 3rd working day): Wed and Thu remain.
    assert cal.working_days_between(local(2026, 2, 24, 15), due) == 2
    # Across the year nobody loaded: weekends-only unless strict.
    assert cal.working_days_between(local(2026, 12, 31, 9), local(2027, 1, 5, 9)) == 3
    with pytest.raises(YearUnknown):
        cal.working_days_between(local(2026, 12, 31, 9), local(2027, 1, 5, 9), strict=True)


def test_engine_module_imports_no_framework() -> None:
    tree = ast.parse((ROOT / "workflow_app" / "engine" / "calendar.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m.split(".")[0] in {"flask", "sqlalchemy", "workflow_app"}}


instants = st.datetimes(min_value=datetime(2004, 1, 1), max_value=datetime(2027, 6, 30),
                        timezones=st.sampled_from([timezone.utc, SH, ZoneInfo("America/New_York")]))


@settings(max_examples=300, deadline=None, database=None)  # no .hypothesis/ in the tree
@given(opened=instants, days=st.integers(min_value=0, max_value=60))
def test_deadline_properties(cal: WorkingCalendar, opened: datetime, days: int) -> None:
    now, later = cal.add_working_days(opened, days), cal.add_working_days(opened, days + 1)
    assert later.due_at > now.due_at and later.due_at.tzinfo is timezone.utc
    due_day = (later.due_at - timedelta(microseconds=1)).astimezone(SH).date()
    assert cal.is_working_day_provisional(due_day)[0]
    # Reference: walk day by day from the local opening date.
    walked, day = 0, opened.astimezone(SH).date()
    while walked < days + 1:
        day += timedelta(days=1)
        walked += cal.is_working_day_provisional(day)[0]
    assert day == due_day
    assert later.provisional == (later.unknown_years != ()) and set(now.unknown_years) <= set(later.unknown_years)
    assert cal.working_days_between(opened, later.due_at) == days + 1
    assert cal.working_days_between(later.due_at, opened) == -(days + 1)
