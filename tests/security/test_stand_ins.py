"""Stand-ins (代为处理) from the web: the stand-in sees and decides the absent colleague's task on
the instance page while the period runs; the trail names both; nobody else can use
`on_behalf_of`; the period's end ends it; the rules apply to both people (a stand-in who
submitted the application still cannot approve it), and the refusal is in the security log."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.security.conftest import security_events, snapshot
from tests.web.helpers import as_user, open_tasks, start, text
from workflow_app.engine.runtime import Request
from workflow_app.models import TrailEvent


def claimed_with_stand_in(app, people, clock, stand_in: str) -> tuple[int, int]:
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.workflow.act(s, people["promo1"], iid, Request("claim", task.id))
    day = clock().date()
    named = as_user(app, "promo1").post("/security/substitutions", data={
        "substitute": stand_in, "start_date": day.isoformat(),
        "end_date": (day + timedelta(days=7)).isoformat(), "reason": "出差"})
    assert named.status_code == 302
    return iid, task.id


def approve(client, iid: int, task_id: int, on_behalf_of: int | None):
    data = {"task_id": task_id, "action": "approve", "opinion": "代为同意"}
    if on_behalf_of is not None:
        data["on_behalf_of"] = on_behalf_of
    return client.post(f"/instances/{iid}/act", data=data)


def test_the_stand_in_decides_from_the_instance_page_and_the_trail_names_both(app, people, clock):
    iid, task_id = claimed_with_stand_in(app, people, clock, "econ")
    econ = as_user(app, "econ")
    listing = text(econ.get("/security/substitutions"))
    assert f"/instances/{iid}#task-{task_id}" in listing
    page = econ.get(f"/instances/{iid}")
    assert page.status_code == 200
    html = text(page)
    assert f'name="on_behalf_of" value="{people["promo1"]}"' in html and "您是代理人" in html
    done = approve(econ, iid, task_id, people["promo1"])
    assert done.status_code == 302
    with app.extensions["parkflow"].db.read() as s:
        event = s.scalars(select(TrailEvent).where(TrailEvent.instance_id == iid,
                                                   TrailEvent.action == "approve")).one()
    assert event.actor_id == people["econ"] and event.on_behalf_of_id == people["promo1"]
    assert event.opinion == "代为同意"
    shown = text(as_user(app, "promo1").get(f"/instances/{iid}"))
    assert "代为同意" in shown


def test_nobody_else_can_act_on_behalf(app, people, clock):
    iid, task_id = claimed_with_stand_in(app, people, clock, "econ")
    stranger = as_user(app, "promo2")
    before = snapshot(app)
    # a queue colleague may see the claimed task (a lost claim race is a conflict, not a 404), so
    # the refusal comes back to the page as a flash; what matters is that nothing was written
    refused = approve(stranger, iid, task_id, people["promo1"])
    assert refused.status_code in (302, 403, 404)
    if refused.status_code == 302:
        with stranger.session_transaction() as flashed:
            messages = dict((m, c) for c, m in flashed.get("_flashes", []))
        assert messages.get("您当前不是此人的代理人") == "error", messages
    assert snapshot(app) == before
    assert "on_behalf_of" not in text(stranger.get(f"/instances/{iid}"))


def test_the_period_ending_ends_the_stand_in(app, people, clock):
    iid, task_id = claimed_with_stand_in(app, people, clock, "econ")
    clock.now += timedelta(days=8)
    econ = as_user(app, "econ")
    before = snapshot(app)
    assert econ.get(f"/instances/{iid}").status_code == 404
    assert approve(econ, iid, task_id, people["promo1"]).status_code == 404
    assert snapshot(app) == before


def test_a_stand_in_who_submitted_the_application_still_cannot_approve_it(app, people, clock):
    iid, task_id = claimed_with_stand_in(app, people, clock, "submitter")
    submitter = as_user(app, "submitter")
    assert "on_behalf_of" not in text(submitter.get(f"/instances/{iid}"))   # not offered
    before = snapshot(app)
    refused = approve(submitter, iid, task_id, people["promo1"])
    assert refused.status_code in (302, 403)
    assert snapshot(app) == before
    [logged] = security_events(app, "action_refused")
    assert logged.username == "submitter" and logged.details["reason"] == "self_approval"
