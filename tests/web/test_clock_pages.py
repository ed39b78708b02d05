"""The clock on the instance page: 补正 (supplements), stopping and restarting the clock, asking
for and granting 延期 — the forms are shown only to whom the engine lets act, the POSTs go through
the service, and a head of another department (or a reviewer) cannot grant an extension. Time is
frozen (the `clock` fixture)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from tests.factories import create_people
from tests.web.helpers import DATA, act, as_user, open_tasks, start, text
from workflow_app.engine.runtime import Request
from workflow_app.models import Task, TrailEvent


@pytest.fixture
def heads(app, people) -> dict[str, int]:
    """A head of 投促中心 (the department of the `assess` step) beside the factory people."""
    with app.extensions["parkflow"].db.write() as s:
        return create_people(s, {"promo_head": [("invest_promo", "head")]})


def task(app, task_id: int) -> Task:
    with app.extensions["parkflow"].db.read() as s:
        return s.get(Task, task_id)


def trail(app, iid: int) -> list[str]:
    with app.extensions["parkflow"].db.read() as s:
        return list(s.scalars(select(TrailEvent.action).where(TrailEvent.instance_id == iid)
                              .order_by(TrailEvent.seq)))


def claimed(app, people, clock) -> tuple[int, int]:
    clock.now = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # Monday 2 March 2026, 09:00 Beijing
    iid = start(app, people)
    [assess] = open_tasks(app, iid)
    act(app, people, "promo1", iid, Request("claim", assess.id))
    return iid, assess.id


def post(client, iid: int, **form):
    return client.post(f"/instances/{iid}/act", data=form)


def test_supplement_from_the_page_stops_the_clock_until_the_submitter_resubmits(app, people, clock):
    iid, tid = claimed(app, people, clock)
    reviewer = as_user(app, "promo1")
    page = text(reviewer.get(f"/instances/{iid}"))
    assert 'data-action="supplement"' in page and 'data-action="pause"' in page
    assert 'data-action="request_extension"' in page
    assert "要求补正" in page
    r = post(reviewer, iid, action="supplement", task_id=tid, opinion="缺：土地权属证明、环评批复")
    assert r.status_code == 302
    assert task(app, tid).paused_at == clock.now
    assert trail(app, iid)[-1] == "supplement"
    page = text(reviewer.get(f"/instances/{iid}"))
    assert "已要求补正" in page  # the done message
    assert 'data-action="supplement"' not in page  # one request at a time
    assert 'value="approve"' not in page and "data-clock-paused" in page  # no approving while stopped
    assert 'data-action="resume"' not in page  # the submitter's answer restarts it, not a resume
    # the submitter resubmits on the page; the clock runs again, moved by the working days stopped
    clock.now = datetime(2026, 3, 4, 1, 0, tzinfo=timezone.utc)
    submitter = as_user(app, "submitter")
    ask = next(t for t in open_tasks(app, iid) if t.origin == "start")
    assert 'value="submit"' in text(submitter.get(f"/instances/{iid}"))
    before = task(app, tid).due_at
    assert post(submitter, iid, action="submit", task_id=ask.id, opinion="已补齐",
                **{f"f-{k}": v for k, v in DATA.items()}).status_code == 302
    after = task(app, tid)
    assert after.paused_at is None and after.due_at > before
    assert trail(app, iid)[-1] == "submit"


def test_pause_and_resume_from_the_page(app, people, clock):
    iid, tid = claimed(app, people, clock)
    reviewer = as_user(app, "promo1")
    # an opinion is required: the service refuses, nothing is written
    post(reviewer, iid, action="pause", task_id=tid, opinion="")
    assert task(app, tid).paused_at is None and "pause" not in trail(app, iid)
    assert "请填写暂停计时的原因" in text(reviewer.get(f"/instances/{iid}"))  # the refusal, in Chinese
    assert post(reviewer, iid, action="pause", task_id=tid, opinion="专家评审").status_code == 302
    assert task(app, tid).paused_at == clock.now
    page = text(reviewer.get(f"/instances/{iid}"))
    assert 'data-action="resume"' in page and 'data-action="pause"' not in page
    # somebody else cannot restart my clock
    post(as_user(app, "promo2"), iid, action="resume", task_id=tid)
    assert task(app, tid).paused_at is not None
    clock.now = datetime(2026, 3, 5, 1, 0, tzinfo=timezone.utc)  # Thursday: 3 working days stopped
    due = task(app, tid).due_at
    reviewer = as_user(app, "promo1")  # a new session: the old one ended with the days passed
    assert post(reviewer, iid, action="resume", task_id=tid).status_code == 302
    resumed = task(app, tid)
    assert resumed.paused_at is None and (resumed.due_at - due).days == 3
    assert trail(app, iid)[-2:] == ["pause", "resume"]


def test_extension_requested_on_the_page_and_granted_by_the_head_only(app, people, heads, clock):
    iid, tid = claimed(app, people, clock)
    reviewer = as_user(app, "promo1")
    post(reviewer, iid, action="request_extension", task_id=tid, days="0", opinion="材料复杂")
    assert "request_extension" not in trail(app, iid)  # 0 days: refused by the form
    assert post(reviewer, iid, action="request_extension", task_id=tid, days="4",
                opinion="材料复杂").status_code == 302
    assert trail(app, iid)[-1] == "request_extension"
    # the reviewer sees no grant form and cannot grant by posting either
    assert 'data-action="grant_extension"' not in text(reviewer.get(f"/instances/{iid}"))
    due = task(app, tid).due_at
    post(reviewer, iid, action="grant_extension", task_id=tid, days="4", opinion="同意延期")
    post(as_user(app, "sasac"), iid, action="grant_extension", task_id=tid, days="4", opinion="同意")
    assert task(app, tid).due_at == due and "grant_extension" not in trail(app, iid)
    head = as_user(app, "promo_head")
    page = text(head.get(f"/instances/{iid}"))
    assert 'data-action="grant_extension"' in page and "经办人申请延期 4 个工作日" in page
    assert post(head, iid, action="grant_extension", task_id=tid, days="4",
                opinion="同意延期").status_code == 302
    granted = task(app, tid)
    assert trail(app, iid)[-1] == "grant_extension" and granted.due_at > due
    with app.extensions["parkflow"].db.read() as s:
        event = s.scalars(select(TrailEvent).where(TrailEvent.instance_id == iid)
                          .order_by(TrailEvent.seq.desc())).first()
    assert (event.actor_department, event.actor_role, event.details["days"]) == ("invest_promo", "head", 4)
    # the timeline names the clock's events in words, not codes
    page = text(as_user(app, "submitter").get(f"/instances/{iid}"))
    assert "申请延期" in page and "批准延期" in page and "request_extension" not in page


# ------------------------------------------------------------------ what the pages show
def inbox_row(client, title: str, tab: str = "my") -> str:
    html = text(client.get(f"/?tab={tab}"))
    return html.split(title)[1].split("</li>")[0]


def test_due_soon_is_counted_in_working_days(app, people, clock):
    """Friday 09:00, due at the end of Monday: 63 hours away (more than two calendar days), but
    only one working day is left — due soon."""
    iid, tid = claimed(app, people, clock)
    clock.now = datetime(2026, 3, 6, 1, 0, tzinfo=timezone.utc)  # Friday 6 March, 09:00 Beijing
    from sqlalchemy import update
    with app.extensions["parkflow"].db.write() as s:
        s.execute(update(Task).where(Task.id == tid).values(
            due_at=datetime(2026, 3, 9, 16, 0, tzinfo=timezone.utc)))  # end of Monday 9 March, Beijing
    client = as_user(app, "promo1")
    row = inbox_row(client, "新材料中试基地")
    assert 'data-due="soon"' in row and "剩 1 个工作日" in row
    page = text(client.get(f"/instances/{iid}"))
    assert 'data-due="soon"' in page and 'data-working-days="1"' in page


def test_working_days_left_on_the_inbox_and_the_page(app, people, clock):
    iid, tid = claimed(app, people, clock)  # Monday 2 March 09:00, 5 working days: due end of Mon 9 March
    client = as_user(app, "promo1")
    row = inbox_row(client, "新材料中试基地")
    assert 'data-due="ok"' in row and "剩 5 个工作日" in row and "2026年3月9日" in row
    clock.now = datetime(2026, 3, 11, 1, 0, tzinfo=timezone.utc)  # Wednesday 11 March
    client = as_user(app, "promo1")
    assert "已逾期 2 个工作日" in inbox_row(client, "新材料中试基地")
    assert "已逾期 2 个工作日" in text(client.get(f"/instances/{iid}"))


def test_a_stopped_clock_shows_since_when_and_why(app, people, clock):
    iid, tid = claimed(app, people, clock)
    act(app, people, "promo1", iid, Request("pause", tid, opinion="组织专家评审"))
    clock.now = datetime(2026, 3, 4, 1, 0, tzinfo=timezone.utc)
    client = as_user(app, "promo1")
    row = inbox_row(client, "新材料中试基地")
    assert 'data-due="paused"' in row and "计时暂停" in row and "2026年3月2日" in row
    assert "组织专家评审" in row  # why, on the inbox row too
    page = text(client.get(f"/instances/{iid}"))
    assert "计时暂停" in page and "组织专家评审" in page and "暂停时剩 5 个工作日" in page


def test_the_timeline_names_clock_events_in_both_languages(app, people, clock):
    iid, tid = claimed(app, people, clock)
    act(app, people, "promo1", iid, Request("pause", tid, opinion="专家评审"))
    act(app, people, "promo1", iid, Request("resume", tid))
    act(app, people, "promo1", iid, Request("request_extension", tid, opinion="复杂", days=3))
    client = as_user(app, "submitter")
    page = text(client.get(f"/instances/{iid}"))
    for label in ("暂停计时", "恢复计时", "申请延期", "申请延期 3 个工作日"):
        assert label in page
    client.post("/locale/en")
    page = text(client.get(f"/instances/{iid}"))
    for label in ("Clock stopped", "Clock restarted", "Extension requested", "3 more working days asked for"):
        assert label in page
    assert ">pause<" not in page and ">request_extension<" not in page


def test_the_header_links_the_sla_page_for_those_who_may_see_it(app, people):
    assert 'href="/sla/"' in text(as_user(app, "sasac").get("/"))   # a department head
    assert 'href="/sla/"' not in text(as_user(app, "promo1").get("/"))  # a reviewer


# ------------------------------------------------------------------ 催办
@pytest.fixture
def hourly_urges(db, web_defs, clock, people):
    """The app with URGE_INTERVAL_HOURS = 2 (the configuration, not a patched service)."""
    from config import TestConfig
    from workflow_app import create_app

    class Config(TestConfig):
        DATABASE_URL = db.url
        PROCESS_DEFS = str(web_defs)
        WTF_CSRF_ENABLED = False
        RATELIMIT_ENABLED = False
        URGE_INTERVAL_HOURS = 2

    app = create_app(Config)
    svc = app.extensions["parkflow"]
    svc.clock = svc.workflow.clock = clock
    yield app
    svc.db.dispose()


def urges(app, iid: int) -> list[int]:
    with app.extensions["parkflow"].db.read() as s:
        return list(s.scalars(select(TrailEvent.actor_id).where(TrailEvent.instance_id == iid,
                                                               TrailEvent.action == "urge")))


def test_the_coordinating_body_may_urge_from_the_page_rate_limited(hourly_urges, people, clock):
    """The head of 区经信局 (the coordinating body) and the submitter may 催办; a reviewer may not;
    each task at most once per URGE_INTERVAL_HOURS."""
    app = hourly_urges
    with app.extensions["parkflow"].db.write() as s:
        people = {**people, **create_people(s, {"econ_head": [("econ_it", "head")]})}
    clock.now = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
    iid = start(app, people)  # waits on 投促中心: 区经信局 has no task on it
    coordinator = as_user(app, "econ_head")
    page = text(coordinator.get(f"/instances/{iid}"))
    assert 'value="urge"' in page
    assert post(coordinator, iid, action="urge", opinion="请尽快办理").status_code == 302
    assert urges(app, iid) == [people["econ_head"]]
    # again within two hours: refused, with when it becomes possible
    clock.now = datetime(2026, 3, 2, 2, 30, tzinfo=timezone.utc)
    coordinator = as_user(app, "econ_head")
    post(coordinator, iid, action="urge")
    assert urges(app, iid) == [people["econ_head"]]
    assert "催办过于频繁：每项任务每 2 小时最多催办一次，北京时间 2026-03-02 11:00 后可再次催办" in \
        text(coordinator.get(f"/instances/{iid}"))
    clock.now = datetime(2026, 3, 2, 3, 1, tzinfo=timezone.utc)  # two hours later
    assert post(as_user(app, "submitter"), iid, action="urge").status_code == 302
    assert urges(app, iid) == [people["econ_head"], people["submitter"]]
    # a reviewer who may see it (the queue's) gets no button and is refused when posting
    reviewer = as_user(app, "promo2")
    assert 'value="urge"' not in text(reviewer.get(f"/instances/{iid}"))
    clock.now = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)
    post(as_user(app, "promo2"), iid, action="urge")
    assert len(urges(app, iid)) == 2
    # a reviewer of the coordinating body or of another department cannot see it at all
    for stranger in ("econ", "plan1"):
        assert as_user(app, stranger).get(f"/instances/{iid}").status_code == 404
        post(as_user(app, stranger), iid, action="urge")
    assert len(urges(app, iid)) == 2


def test_every_refusal_of_the_clock_reads_in_chinese(app):
    """The engine's refusals (engine/clock_actions.py, the approve-while-stopped check, 催办) are
    flashed in the page language: none falls through in English."""
    import ast
    import re
    from pathlib import Path

    from workflow_app.engine import clock_actions
    from workflow_app.engine.errors import InvalidAction
    from workflow_app.web.messages import action_message

    source = Path(clock_actions.__file__).read_text(encoding="utf-8")
    texts = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("InvalidAction", "Conflict", "Forbidden"):
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                texts.add(arg.value)
            elif isinstance(arg, ast.JoinedStr):  # f"... {MAX_EXTENSION_DAYS}"
                texts.add("".join(v.value if isinstance(v, ast.Constant) else "365" for v in arg.values))
    texts |= {"the clock of this task is stopped (supplements awaited, expert review or hearing); it can "
              "be decided once it runs again",
              "only the submitter or the coordinating body can urge",
              "urged too often: at most once every 24 hours per task; you can urge again after "
              "2026-03-02 11:00 (Beijing time)"}
    assert len(texts) >= 15
    with app.test_request_context():
        for text_ in sorted(texts):
            out = action_message(InvalidAction(text_))
            assert not re.search(r"[A-Za-z]{4,}", out.replace("Beijing", "")), (text_, out)
