"""Inbox filters beside the title search: process, step, department (queue), due state, date range."""
from __future__ import annotations

from datetime import timedelta

from tests.web.helpers import as_user, start, text

QUICK = {"subject": "快速核验-甲"}


def _titles(client, **args) -> list[str]:
    html = text(client.get("/", query_string=args))
    return [chunk.split("</a>")[0].split(">")[-1] for chunk in html.split('class="inbox-title"')[1:]]


def test_filters_by_process_step_department_due_and_date(app, people, clock):
    review = start(app, people)  # 测试评审 → promo queue (invest_promo, 5 working days)
    quick = start(app, people, key="quick_check", data=QUICK)  # promo1+promo2 或签, 1 working day
    clock.now += timedelta(days=3)
    later = start(app, people, key="quick_check", data={"subject": "快速核验-乙"})

    promo1 = as_user(app, "promo1")
    mine = text(promo1.get("/"))
    assert "快速核验-甲" in mine and "快速核验-乙" in mine
    assert _titles(promo1, process="quick_check", step="check") == ["快速核验-乙", "快速核验-甲"]
    assert _titles(promo1, process="review") == []
    assert _titles(promo1, due="overdue") == ["快速核验-甲"]          # 1 working day, 3 days ago
    assert _titles(promo1, due="soon") == ["快速核验-乙"]
    today = (clock.now + timedelta(hours=8)).date()
    assert _titles(promo1, since=today.isoformat()) == ["快速核验-乙"]
    assert _titles(promo1, until=(today - timedelta(days=1)).isoformat()) == ["快速核验-甲"]
    assert _titles(promo1, since="not-a-date") == ["快速核验-乙", "快速核验-甲"]  # ignored, not an error

    queue = _titles(promo1, tab="queue")
    assert queue and all("新材料" in t for t in queue)
    assert _titles(promo1, tab="queue", department="invest_promo") == queue
    assert _titles(promo1, tab="queue", department="econ_it") == []

    submitter = as_user(app, "submitter")
    assert len(_titles(submitter, tab="started")) == 3
    assert _titles(submitter, tab="started", process="quick_check", due="overdue") == ["快速核验-甲"]
    page = text(submitter.get("/", query_string={"tab": "started", "process": "quick_check"}))
    assert '<option value="check">' in page  # the chosen process's steps are offered
    assert len({review, quick, later}) == 3
