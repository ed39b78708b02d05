"""The time-limit compliance figures (services/sla_report): deemed consent (逾期视为同意) is not a
task finished within its limit, and the working days a task took run from when its clock started
(its turn in line) to when it was finished, without the days its clock stood still."""
from __future__ import annotations

from datetime import date

from tests.services.clock_support import clock_defs_dir, env, local  # noqa: F401
from workflow_app.services import sla, sla_report


def report(env, now):
    with env.db.read() as s:
        return sla_report.build(s, calendar=env.workflow.working_calendar(s), org=env.store.organisation,
                                specs=lambda i: env.store.spec(s, i), now=now, date_from=date(2026, 1, 1),
                                date_to=date(2026, 12, 31), process_key="clock")


def test_deemed_consent_is_counted_late_not_on_time(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("joint")
    due = env.open_task(iid, "joint").due_at
    # the sweeper fires at the due instant itself: the branches are deemed to consent right then
    stats = sla.sweep(env.db, env.workflow, due)
    assert stats.deemed_consents == 2
    r = report(env, due)
    assert (r.totals.on_time, r.totals.late, r.totals.deemed) == (0, 3, 3)
    [step] = [f for f in r.steps if f.step == "joint"]
    assert step.finished == 3 and step.on_time == 0


def test_days_taken_leave_out_the_stopped_clock(env, clock):
    clock.now = local(2026, 3, 2, 9)  # Monday
    iid = env.start("task")
    task = env.open_task(iid)
    env.act("promo1", iid, "claim", task.id)
    env.act("promo1", iid, "pause", task.id, opinion="专家评审")
    clock.now = local(2026, 3, 5, 9)  # Thursday: Tue, Wed, Thu stood still
    env.act("promo1", iid, "resume", task.id)
    clock.now = local(2026, 3, 6, 9)  # Friday
    env.act("promo1", iid, "approve", task.id)
    r = report(env, clock.now)
    [step] = [f for f in r.steps if f.step == "review"]
    assert (step.finished, step.days_total, step.on_time) == (1, 1, 1)
    assert r.totals.days_total == 1


def test_days_taken_start_when_a_waiting_task_opens(env, clock):
    clock.now = local(2026, 3, 2, 9)  # Monday; the second 依次 signer waits in line
    iid = env.start("seq")
    first, second = env.tasks(iid, "open", "waiting")
    clock.now = local(2026, 3, 4, 9)  # Wednesday: the first signs, the second's clock starts
    env.act("audit1", iid, "approve", first.id)
    clock.now = local(2026, 3, 5, 9)  # Thursday
    env.act("audit2", iid, "approve", second.id)
    r = report(env, clock.now)
    [step] = [f for f in r.steps if f.step == "seq"]
    assert (step.finished, step.days_total, step.days_max) == (2, 3, 2)  # 2 + 1, not 2 + 3
