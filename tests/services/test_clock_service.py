"""The task clock through the service: due dates around real holidays with 调休, due dates given
when a waiting task OPENS, provisional dates into an unloaded year and their recomputation, 补正
(supplements) and expert-review pauses stopping the clock, extensions by the department head.
Time is frozen (the `clock` fixture); nothing sleeps."""
from __future__ import annotations

import pytest

from tests.services.clock_support import ROOT, clock_defs_dir, day_end, env, local  # noqa: F401
from workflow_app.engine.calendar import WorkingCalendar, parse_year_schedule
from workflow_app.engine.errors import Conflict, Forbidden, InvalidAction
from workflow_app.services import calendars, sla
from workflow_app.services.trail import verify

CN_2027 = ROOT / "tests" / "fixtures" / "clock" / "cn_2027.yaml"


# ------------------------------------------------------------------ real holidays with 调休
def test_spring_festival_2026_counts_the_make_up_saturdays(env, clock):
    """Opened Friday 13 Feb 2026 with 5 working days: Sat 14 Feb is a 调休 working day (1), the
    festival 15–23 Feb is off, then 24, 25, 26, 27 Feb: due at the end of Friday 27 Feb."""
    clock.now = local(2026, 2, 13, 10)
    iid = env.start("task")
    task = env.open_task(iid)
    assert task.due_at == day_end(2026, 2, 27) and not task.due_provisional
    left = env.workflow.days_left(task, local(2026, 2, 16, 9))  # in the middle of the festival
    assert (left.due_date.isoformat(), left.working_days, left.overdue) == ("2026-02-27", 4, False)
    # Monday 2 March: 2 working days late, because Saturday 28 Feb was a 调休 working day too.
    left = env.workflow.days_left(task, local(2026, 3, 2, 9))
    assert left.overdue and left.working_days == -2


def test_national_day_2025_counts_the_make_up_sunday(env, clock):
    """Opened Friday 26 Sep 2025: Sun 28 Sep works (1), 29 and 30 Sep (2, 3), 1–8 Oct off, then
    9 and 10 Oct (4, 5): due at the end of Friday 10 Oct — not 3 Oct as weekends alone would say."""
    clock.now = local(2025, 9, 26, 10)
    iid = env.start("task")
    assert env.open_task(iid).due_at == day_end(2025, 10, 10)


# ------------------------------------------------------------------ waiting tasks
def test_sequential_signers_get_their_due_date_when_their_turn_comes(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("seq")
    first, second = env.tasks(iid, "open", "waiting")
    assert (first.status, second.status) == ("open", "waiting")
    assert first.due_at == day_end(2026, 3, 4) and second.due_at is None and second.next_reminder_at is None
    clock.now = local(2026, 3, 4, 16)
    env.act("audit1", iid, "approve", first.id)
    second = env.task(second.id)
    assert second.status == "open" and second.due_at == day_end(2026, 3, 6)  # 2 days from 4 Mar
    approve = env.events(iid, "approve")[-1]
    assert approve.details["opened"] == [second.id]  # the trail says when its clock started


def test_a_signer_added_after_me_gets_a_due_date_when_i_have_signed(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    task = env.open_task(iid)
    env.act("promo1", iid, "claim", task.id)
    env.act("promo1", iid, "add_signer", task.id, user=env.people["promo2"], position="after")
    added = next(t for t in env.tasks(iid) if t.origin == "added")
    assert added.status == "waiting" and added.due_at is None
    clock.now = local(2026, 3, 3, 11)
    env.act("promo1", iid, "approve", task.id)
    added = env.task(added.id)
    assert added.status == "open" and added.due_at == day_end(2026, 3, 10)  # 5 days from 3 Mar


# ------------------------------------------------------------------ provisional into 2027
def test_provisional_due_date_into_2027_is_recomputed_when_the_year_is_loaded(env, clock):
    clock.now = local(2026, 12, 15, 10)
    iid = env.start("long")  # 30 working days: ends in January 2027, a year nobody has loaded
    task = env.open_task(iid)
    assert task.due_provisional and task.due_at == day_end(2027, 1, 26)  # weekends only
    left = env.workflow.days_left(task)
    assert left.provisional and left.working_days == 30

    clock.now = local(2026, 12, 20, 10)
    with env.db.write() as s:
        result = calendars.load_year(s, CN_2027.read_text(encoding="utf-8"), now=clock.now, by="tester")
    assert result.changed and result.year == 2027
    assert sla.recompute_provisional(env.db, env.workflow, clock.now) == 1
    task = env.task(task.id)
    # New Year's Day (Friday 1 Jan) is off and no Saturday makes up for it: one day later.
    assert task.due_at == day_end(2027, 1, 27) and not task.due_provisional
    [event] = env.events(iid, "deadline_recomputed")
    assert event.actor_name == "系统" and event.actor_id is None and event.task_id == task.id
    assert (event.details["from"], event.details["to"]) == (day_end(2027, 1, 26).isoformat(),
                                                           day_end(2027, 1, 27).isoformat())
    [load] = env.events(None, "calendar_load")
    assert load.details["year"] == 2027 and load.details["hash"] == result.hash
    # Idempotent: loading the same file again, or recomputing again, changes nothing.
    with env.db.write() as s:
        assert not calendars.load_year(s, CN_2027.read_text(encoding="utf-8"), now=clock.now, by="t").changed
    assert sla.recompute_provisional(env.db, env.workflow, clock.now) == 0
    with env.db.read() as s:
        assert verify(s).ok


def test_recomputation_keeps_extensions_and_stopped_time(env, clock):
    """The recomputed date is what it would have been had 2027 been known from the start: the
    5 days granted and the 2 working days the clock stood still still count."""
    clock.now = local(2026, 12, 15, 10)
    iid = env.start("long")
    task = env.open_task(iid)
    env.act("sasac", iid, "pause", task.id, opinion="组织专家评审")
    clock.now = local(2026, 12, 17, 15)  # Tue 15 -> Thu 17: 16 and 17 Dec stopped
    env.act("sasac", iid, "resume", task.id)
    env.act("sasac", iid, "grant_extension", task.id, days=5, opinion="需补充现场踏勘")
    with env.db.write() as s:
        calendars.load_year(s, CN_2027.read_text(encoding="utf-8"), now=clock.now, by="tester")
    sla.recompute_provisional(env.db, env.workflow, clock.now)
    full = WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars").with_schedule(
        parse_year_schedule(CN_2027.read_text(encoding="utf-8")))
    assert env.task(task.id).due_at == full.add_working_days(local(2026, 12, 15, 10), 30 + 2 + 5).due_at


def test_a_loaded_year_reaches_other_workflow_objects_through_the_database(env, clock, db):
    """Every app process builds its calendar from the files plus the database rows."""
    from workflow_app.services.workflow import Workflow
    other = Workflow(env.store, WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars"), clock,
                     calendar_ttl=0)
    with db.write() as s:
        calendars.load_year(s, CN_2027.read_text(encoding="utf-8"), now=clock.now, by="tester")
    clock.now = local(2026, 12, 15, 10)
    with db.write() as s:
        iid = other.start(s, env.people["submitter"], "clock", {"name": "x", "route": "long"},
                          department="zhentou").instance_id
    task = env.open_task(iid)
    assert task.due_at == day_end(2027, 1, 27) and not task.due_provisional


# ------------------------------------------------------------------ 补正 / 一次性告知
def test_supplement_request_stops_the_clock_until_the_submitter_resubmits(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    task = env.open_task(iid)
    assert task.due_at == day_end(2026, 3, 9)
    clock.now = local(2026, 3, 3, 10)
    with pytest.raises(InvalidAction, match="opinion"):
        env.act("promo1", iid, "supplement", task.id)
    env.act("promo1", iid, "supplement", task.id, opinion="一次性告知：缺营业执照副本、环评批复、近三年纳税证明")
    task = env.task(task.id)
    assert task.paused_at == clock.now and task.next_reminder_at is None and task.status == "open"
    ask = next(t for t in env.tasks(iid, "open") if t.origin == "start")
    assert (ask.step, ask.assignee_id, ask.round, ask.due_at) == ("review", env.people["submitter"], task.round, None)
    [note] = env.notifications("submitter", "supplement")
    assert "营业执照" in note.body
    with pytest.raises(Conflict, match="clock"):
        env.act("promo1", iid, "approve", task.id)  # nothing to decide on until the papers come
    with pytest.raises(Conflict, match="supplements"):
        env.act("promo1", iid, "resume", task.id)
    with pytest.raises(Conflict, match="already been requested"):
        env.act("promo2", iid, "supplement", task.id, opinion="再补")
    # Stopped Tuesday 10:00, resubmitted Thursday 15:00: Wed 4 and Thu 5 Mar do not count.
    clock.now = local(2026, 3, 5, 15)
    env.act("submitter", iid, "submit", ask.id, data={"name": "时限测试项目", "route": "task", "note": "已补齐"})
    task = env.task(task.id)
    assert task.paused_at is None and task.due_at == day_end(2026, 3, 11) and task.status == "open"
    submit = env.events(iid, "submit")[-1]
    assert submit.details["resumed"] == [task.id] and submit.details["days"] == 2
    assert [e.action for e in env.events(iid)] == ["start", "supplement", "submit"]
    env.act("promo1", iid, "approve", task.id)
    assert env.events(iid)[-1].to_step == "approved"


def test_a_reviewer_may_still_reject_while_supplements_are_awaited(env, clock):
    iid = env.start("task")
    task = env.open_task(iid)
    env.act("promo1", iid, "supplement", task.id, opinion="缺材料")
    env.act("promo1", iid, "reject", task.id, opinion="逾期未补正，不予受理")
    assert env.tasks(iid, "open", "waiting") == []  # the submitter's supplement task went too
    assert env.events(iid)[-1].to_step == "rejected"


# ------------------------------------------------------------------ expert review / hearing
def test_pause_and_resume_shift_the_due_date_by_the_working_days_stopped(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    task = env.open_task(iid)
    env.act("promo1", iid, "claim", task.id)
    clock.now = local(2026, 3, 3, 9)
    with pytest.raises(Forbidden):
        env.act("promo2", iid, "pause", task.id, opinion="专家评审")  # not their task
    env.act("promo1", iid, "pause", task.id, opinion="组织专家评审")
    with pytest.raises(Conflict, match="already stopped"):
        env.act("promo1", iid, "pause", task.id, opinion="听证")
    with pytest.raises(Conflict, match="clock"):
        env.act("promo1", iid, "approve", task.id)
    assert env.workflow.days_left(env.task(task.id), local(2026, 3, 20)).paused
    clock.now = local(2026, 3, 6, 17)  # Wed 4, Thu 5, Fri 6 stopped
    env.act("promo1", iid, "resume", task.id, opinion="专家意见已出具")
    task = env.task(task.id)
    assert task.due_at == day_end(2026, 3, 12) and task.paused_at is None
    assert [(e.action, e.details.get("days")) for e in env.events(iid, "pause", "resume")] == [("pause", None), ("resume", 3)]
    assert env.events(iid, "pause")[0].opinion == "组织专家评审"


# ------------------------------------------------------------------ 延期
def test_extension_is_requested_by_the_assignee_and_granted_by_the_head_only(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    task = env.open_task(iid)
    env.act("promo1", iid, "claim", task.id)
    with pytest.raises(InvalidAction, match="working days"):
        env.act("promo1", iid, "request_extension", task.id, opinion="材料复杂", days=0)
    env.act("promo1", iid, "request_extension", task.id, opinion="涉及多部门会商", days=5)
    [asked] = env.notifications("promo_head", "extension_requested")
    assert "5 个工作日" in asked.body
    for stranger in ("promo2", "promo1", "econ_head"):  # a reviewer, the assignee, another head
        with pytest.raises(Forbidden, match="head"):
            env.act(stranger, iid, "grant_extension", task.id, opinion="同意", days=5)
    with pytest.raises(InvalidAction, match="opinion"):
        env.act("promo_head", iid, "grant_extension", task.id, days=5)
    env.act("promo_head", iid, "grant_extension", task.id, opinion="同意延期5个工作日", days=5)
    task = env.task(task.id)
    assert task.due_at == day_end(2026, 3, 16)  # 9 Mar + 5 working days
    [granted] = env.events(iid, "grant_extension")
    assert granted.details["days"] == 5 and granted.details["to"] == day_end(2026, 3, 16).isoformat()
    assert granted.actor_id == env.people["promo_head"] and granted.opinion == "同意延期5个工作日"
    # shown to the submitter: a notification, and the event is on the instance's own trail
    assert [n.kind for n in env.notifications("submitter")] == ["extended"]


def test_the_ladder_rearms_after_an_extension(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    task = env.open_task(iid)
    sla.sweep(env.db, env.workflow, local(2026, 3, 10, 9))  # reminder and overdue notice fired
    assert env.task(task.id).escalation_level == 2
    clock.now = local(2026, 3, 10, 10)
    env.act("promo_head", iid, "grant_extension", task.id, opinion="同意", days=5)
    task = env.task(task.id)
    assert task.escalation_level == 0 and task.next_reminder_at == day_end(2026, 3, 13)


# ------------------------------------------------------------------ 前加签 re-opens a task
def test_the_ladder_is_rearmed_when_a_signer_added_before_me_has_signed(env, clock):
    """A 前加签 puts my task in line (waiting: no reminders); when the added signer has signed my
    task opens again with the due date it had, and its reminders are armed again."""
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    task = env.open_task(iid)
    due = task.due_at
    assert task.next_reminder_at == day_end(2026, 3, 6)  # one working day left: Friday evening
    env.act("promo1", iid, "claim", task.id)
    env.act("promo1", iid, "add_signer", task.id, user=env.people["promo2"], position="before")
    waiting = env.task(task.id)
    assert waiting.status == "waiting" and waiting.next_reminder_at is None
    added = next(t for t in env.tasks(iid, "open") if t.origin == "added")
    clock.now = local(2026, 3, 4, 11)
    env.act("promo2", iid, "approve", added.id)
    reopened = env.task(task.id)
    assert reopened.status == "open" and reopened.due_at == due  # the due date it had
    assert reopened.next_reminder_at == day_end(2026, 3, 6)      # and the ladder runs again
    counts = sla.sweep(env.db, env.workflow, local(2026, 3, 10, 9))
    assert counts.reminders >= 1 and counts.escalations >= 1
    fired = [e for e in env.events(iid, "remind", "escalate") if e.task_id == task.id]
    assert [e.action for e in fired] == ["remind", "escalate"]


def test_recomputation_does_not_move_a_task_reopened_after_a_signer_added_before(env, clock):
    """The due date replayed from the trail is the date the task got when it FIRST opened, not
    the moment a 前加签 signer handed it back."""
    clock.now = local(2026, 12, 15, 10)
    iid = env.start("long")
    task = env.open_task(iid)
    env.act("sasac", iid, "add_signer", task.id, user=env.people["econ_head"], position="before")
    added = next(t for t in env.tasks(iid, "open") if t.origin == "added")
    clock.now = local(2026, 12, 22, 10)  # a week later the added signer signs: my task re-opens
    env.act("econ_head", iid, "approve", added.id)
    assert env.task(task.id).status == "open"
    with env.db.write() as s:
        calendars.load_year(s, CN_2027.read_text(encoding="utf-8"), now=clock.now, by="tester")
    sla.recompute_provisional(env.db, env.workflow, clock.now)
    full = WorkingCalendar.from_directory(ROOT / "process_defs" / "calendars").with_schedule(
        parse_year_schedule(CN_2027.read_text(encoding="utf-8")))
    assert env.task(task.id).due_at == full.add_working_days(local(2026, 12, 15, 10), 30).due_at
