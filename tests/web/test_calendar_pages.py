"""The administrator's working-day calendar page (/calendar): where each year comes from, what a
missing year means (weekends only, 暂定, recomputed once loaded), and importing a year with the
CLI's validation — a bad file is refused with its line and key, a good one recomputes the
provisional due dates at once. The 2027 file loaded here is the tests' own fixture, not the State
Council's schedule (which is not published)."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from tests.web.helpers import as_user, open_tasks, start, text
from workflow_app.models import CalendarYear, SecurityEvent, TrailEvent

CN_2027 = Path(__file__).resolve().parents[1] / "fixtures" / "clock" / "cn_2027.yaml"


def test_only_the_system_administrator_sees_the_calendar(app, people):
    assert as_user(app, "promo1").get("/calendar/").status_code == 403
    assert as_user(app, "sasac").post("/calendar/load", data={"text": "year: 2027"}).status_code == 403
    assert 'href="/calendar/"' not in text(as_user(app, "sasac").get("/"))
    admin = as_user(app, "sysadmin")
    assert 'href="/calendar/"' in text(admin.get("/calendar/"))


def test_a_missing_year_is_shown_with_what_it_means(app, people, clock):
    clock.now = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
    page = text(as_user(app, "sysadmin").get("/calendar/"))
    assert "data-year-missing" in page and "data-missing-note" in page
    assert "只扣除周末" in page and "暂定" in page and "重算" in page
    page = text(as_user(app, "sysadmin").get("/calendar/?year=2026"))
    assert "chinesecalendar" in page and "2026年2月14日" in page  # a 调休 Saturday of the Spring Festival
    assert "data-year-missing" not in page.split('data-year="2026"')[1]
    page = text(as_user(app, "sysadmin").get("/calendar/?year=2027"))
    assert "本年度尚未载入" in page


def test_a_bad_file_is_refused_with_line_and_key(app, people, clock):
    admin = as_user(app, "sysadmin")
    bad = "year: 2027\nsource: x\nholidays:\n  - name: 元旦\n    days: [2027-01-01]\nworkdays: [2027-03-03]\n"
    r = admin.post("/calendar/load", data={"text": bad})
    assert r.status_code == 302
    page = text(admin.get("/calendar/"))
    assert "日历文件有误" in page and ":6: workdays[0]" in page and "2027-03-03 is a weekday" in page
    with app.extensions["parkflow"].db.read() as s:
        assert s.scalars(select(CalendarYear)).all() == []


def test_loading_a_year_recomputes_provisional_due_dates(app, people, clock):
    clock.now = datetime(2026, 12, 28, 2, 0, tzinfo=timezone.utc)  # Monday 28 Dec: 5 working days reach 2027
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    assert task.due_provisional
    admin = as_user(app, "sysadmin")
    r = admin.post("/calendar/load", data={"file": (io.BytesIO(CN_2027.read_bytes()), "cn_2027.yaml")},
                   content_type="multipart/form-data")
    assert r.status_code == 302 and r.headers["Location"].endswith("/calendar/?year=2027")
    page = text(admin.get("/calendar/?year=2027"))
    assert "已载入 2027 年日历；重算了 1 个暂定截止日期" in page and "sysadmin" in page
    assert "2027年2月20日" in page  # the fixture's make-up working day
    [task] = open_tasks(app, iid)
    assert not task.due_provisional
    with app.extensions["parkflow"].db.read() as s:
        assert s.scalar(select(TrailEvent.action).where(TrailEvent.instance_id == iid,
                                                        TrailEvent.action == "deadline_recomputed"))
        [logged] = s.scalars(select(SecurityEvent).where(SecurityEvent.event == "calendar_load")).all()
        assert logged.details["year"] == 2027 and logged.details["changed"] is True
