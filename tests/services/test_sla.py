"""The SLA sweeper on one database: the escalation ladder firing rung by rung exactly once,
deemed consent recorded as a system decision, 催办 rate-limited, notifications written with the
action that causes them, and e-mail delivered to a real local SMTP server (aiosmtpd). Time is
frozen and moved by hand; nothing sleeps."""
from __future__ import annotations

import socket
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from aiosmtpd.controller import Controller

from tests.services.clock_support import clock_defs_dir, day_end, env, local  # noqa: F401
from workflow_app.engine.errors import Forbidden, InvalidAction
from workflow_app.models import Notification
from workflow_app.services import sla
from workflow_app.services.mailer import SmtpMailer
from workflow_app.services.trail import verify


def counts(env, iid, *actions) -> list[str]:
    return [e.action for e in env.events(iid, *actions)]


# ------------------------------------------------------------------ the ladder
def test_the_escalation_ladder_fires_rung_by_rung_exactly_once(env, clock):
    """5 working days from Monday 2 March: due at the end of Monday 9 March. Rungs: -1 assignee
    (end of Fri 6), 0 head (end of Mon 9), +3 coordinator (end of Thu 12), +5 sasac head (end of
    Mon 16). Sweeping often — the same instant twice, and between rungs — fires each once."""
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    task = env.open_task(iid)
    assert task.next_reminder_at == day_end(2026, 3, 6) and task.escalation_level == 0
    plan = [  # (when, level after, recipients of what fired)
        (local(2026, 3, 6, 23, 59), 0, None),
        (day_end(2026, 3, 6), 1, ("remind", {"promo1", "promo2"})),   # a queue task: the queue hears
        (local(2026, 3, 8, 12), 1, None),                              # Sunday: nothing new
        (day_end(2026, 3, 9), 2, ("escalate", {"promo_head"})),
        (local(2026, 3, 11, 9), 2, None),
        (day_end(2026, 3, 12), 3, ("escalate", {"econ_head"})),        # 区经信局: the coordinator
        (day_end(2026, 3, 16), 4, ("escalate", {"sasac"})),
        (local(2026, 4, 30), 4, None),                                 # the ladder is spent
    ]
    names = {v: k for k, v in env.people.items()}
    for when, level, fired in plan:
        for _again in range(2):  # the second pass at the same instant must do nothing
            before = env.count(Notification)
            stats = sla.sweep(env.db, env.workflow, when)
            new = env.notifications()[before:]
            if fired and not _again:
                assert stats.reminders + stats.escalations == 1, when
                assert {n.kind for n in new} == {fired[0]}
                assert {names[n.user_id] for n in new} == fired[1]
            else:
                assert stats.acted == 0 and new == [], when
            assert env.task(task.id).escalation_level == level
    events = env.events(iid, "remind", "escalate")
    assert [(e.action, e.details["level"], e.details["at_days"]) for e in events] == [
        ("remind", 1, -1), ("escalate", 2, 0), ("escalate", 3, 3), ("escalate", 4, 5)]
    assert all(e.actor_name == "系统" and e.actor_id is None for e in events)
    assert env.task(task.id).next_reminder_at is None
    with env.db.read() as s:
        assert verify(s).ok


def test_a_late_sweeper_catches_up_rung_by_rung_in_one_pass(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    stats = sla.sweep(env.db, env.workflow, local(2026, 3, 20))  # the cron was down for two weeks
    assert (stats.reminders, stats.escalations) == (1, 3)
    assert counts(env, iid, "remind", "escalate") == ["remind", "escalate", "escalate", "escalate"]
    assert sla.sweep(env.db, env.workflow, local(2026, 3, 20)).acted == 0


def test_a_paused_task_is_not_reminded(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    task = env.open_task(iid)
    env.act("promo1", iid, "pause", task.id, opinion="听证")
    assert sla.sweep(env.db, env.workflow, local(2026, 4, 1)).acted == 0


# ------------------------------------------------------------------ deemed consent
def test_deemed_consent_is_a_recorded_system_decision(env, clock):
    """并联 with 3 working days and 逾期视为同意 on both branches: 经信局 never answers, 发改局's
    first signer approves and the second does not. At the end of Thursday 5 March both are
    taken to agree — each branch with one `deemed_consent` event by 系统 — and the step passes."""
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("joint")
    industry = env.open_task(iid, "joint")
    assert industry.branch == "industry" and industry.due_at == day_end(2026, 3, 5)
    assert industry.next_reminder_at == day_end(2026, 3, 4)  # the due-soon rung comes first
    plan1 = next(t for t in env.tasks(iid, "open") if t.assignee_id == env.people["plan1"])
    env.act("plan1", iid, "approve", plan1.id)
    stats = sla.sweep(env.db, env.workflow, local(2026, 3, 5, 18))
    assert (stats.reminders, stats.deemed_consents) == (1, 0)  # not yet due: only the reminder
    stats = sla.sweep(env.db, env.workflow, day_end(2026, 3, 5))
    assert stats.deemed_consents == 2
    consents = env.events(iid, "deemed_consent")
    assert [(e.details["branch"], e.actor_name, e.actor_id) for e in consents] == [
        ("industry", "系统", None), ("plan", "系统", None)]
    assert consents[-1].details["verdict"] == "approved" and consents[-1].to_step == "approved"
    assert "逾期视为同意" in consents[0].opinion
    deemed = [t for t in env.tasks(iid) if t.status == "done" and t.acted_by_id is None]
    assert {t.branch for t in deemed} == {"industry", "plan"} and all(t.decision == "approve" for t in deemed)
    assert [n.kind for n in env.notifications("submitter")] == ["deemed_consent", "deemed_consent", "decided"]
    assert sla.sweep(env.db, env.workflow, day_end(2026, 3, 5)).acted == 0
    with env.db.read() as s:
        assert verify(s).ok


def test_a_branch_that_answered_in_time_is_not_deemed(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("joint")
    industry = env.open_task(iid, "joint")
    env.act("econ", iid, "reject", industry.id, opinion="不符合产业定位")
    assert sla.sweep(env.db, env.workflow, local(2026, 3, 30)).deemed_consents == 0
    assert env.events(iid)[-1].to_step == "rejected"


# ------------------------------------------------------------------ 催办
def test_urge_is_rate_limited_per_task_and_recorded(env, clock):
    clock.now = local(2026, 3, 2, 9)
    iid = env.start("task")
    with pytest.raises(Forbidden, match="submitter or the coordinating body"):
        env.act("plan1", iid, "urge", opinion="请尽快")
    env.act("submitter", iid, "urge", opinion="企业急需入驻，请尽快审查")
    assert {n.kind for n in env.notifications("promo1")} == {"task", "urge"}
    clock.now = local(2026, 3, 2, 20)
    with pytest.raises(InvalidAction, match=r"at most once every 24 hours.*2026-03-03 09:00"):
        env.act("econ_head", iid, "urge")  # the coordinator too: the limit is per task
    clock.now = local(2026, 3, 3, 9)
    env.act("econ_head", iid, "urge", opinion="区经信局督促办理")
    urges = env.events(iid, "urge")
    assert [(e.actor_id, e.opinion) for e in urges] == [
        (env.people["submitter"], "企业急需入驻，请尽快审查"), (env.people["econ_head"], "区经信局督促办理")]


# ------------------------------------------------------------------ notifications
def test_notifications_are_written_with_the_action(env, clock):
    iid = env.start("task")
    task = env.open_task(iid)
    assert sorted((n.kind, n.user_id) for n in env.notifications()) == [
        ("task", env.people["promo1"]), ("task", env.people["promo2"])]  # the department queue
    env.act("promo1", iid, "claim", task.id)
    env.act("promo1", iid, "return", task.id, target="draft", opinion="请补充投资协议")
    [returned] = env.notifications("submitter")
    assert returned.kind == "returned" and "请补充投资协议" in returned.body and returned.instance_id == iid
    resubmit = env.open_task(iid)
    env.act("submitter", iid, "submit", resubmit.id)
    review = env.open_task(iid)
    env.act("promo2", iid, "claim", review.id)
    env.act("promo2", iid, "approve", review.id)
    kinds = [n.kind for n in env.notifications("submitter")]
    assert kinds == ["returned", "decided"] and "已通过" in env.notifications("submitter")[-1].body
    assert not [n for n in env.notifications("promo2") if n.kind == "decided"]  # not told of own act


# ------------------------------------------------------------------ e-mail
class Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


def test_notifications_are_e_mailed_by_the_sweeper(env, clock, smtp):
    sink, port = smtp
    iid = env.start("task")
    mailer = SmtpMailer("127.0.0.1", port, "parkflow@zhenhai.example", base_url="https://parkflow.example")
    stats = sla.sweep(env.db, env.workflow, clock.now, mailer=mailer)
    assert stats.emails_sent == 2 and len(sink.messages) == 2
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == ["promo1@zhenhai.example", "promo2@zhenhai.example"]
    mail = message_from_bytes(sink.messages[0].content)
    assert "待办：时限测试项目" in str(make_header(decode_header(mail["Subject"])))
    body = mail.get_payload(decode=True).decode("utf-8")
    assert "受理审查" in body and "https://parkflow.example/notifications/" in body
    assert all(n.emailed_at == clock.now for n in env.notifications())
    assert sla.sweep(env.db, env.workflow, clock.now, mailer=mailer).emails_sent == 0  # sent once
    assert len(sink.messages) == 2
    assert {(n.instance_id, n.kind) for n in env.notifications()} == {(iid, "task")}  # this application's tasks


def test_e_mail_waits_while_the_smtp_server_is_down(env, clock):
    env.start("task")
    down = SmtpMailer("127.0.0.1", free_port(), timeout=2)
    stats = sla.sweep(env.db, env.workflow, clock.now, mailer=down)
    assert (stats.emails_sent, stats.emails_failed) == (0, 2)
    rows = env.notifications()
    assert all(n.emailed_at is None and n.email_attempts == 1 and n.email_error for n in rows)
