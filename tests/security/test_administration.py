"""三员分立 working as intended: the system administrator's accounts, the security administrator's
memberships and policy, the audit administrator's log; out-of-office stand-ins; no default
accounts in production."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.cli.runner import Cli
from tests.security.conftest import security_events, snapshot
from tests.web.helpers import PASSWORD, as_user, login, open_tasks, start, text
from workflow_app.engine.runtime import Request
from workflow_app.models import Membership, TrailEvent, User
from workflow_app.services import substitutions


def test_system_admin_creates_a_user_who_must_change_the_initial_password(app, people):
    sysadmin = as_user(app, "sysadmin")
    page = sysadmin.post("/security/users", data={"username": "new.reviewer", "display_name": "新审核人"})
    assert page.status_code == 200
    html = text(page)
    password = html.split('<code class="secret">')[1].split("<")[0]
    assert "仅显示这一次" in html and len(password) >= 14
    newbie = app.test_client()
    login(newbie, "new.reviewer", password)
    first = newbie.get("/")
    assert first.status_code == 302 and first.headers["Location"].endswith("/password")
    [event] = security_events(app, "user_created")
    assert event.username == "sysadmin" and event.details["target"] == "new.reviewer"
    assert password not in str(event.details)


def test_disabling_and_resetting_end_the_users_sessions(app, people):
    victim = as_user(app, "econ")
    sysadmin = as_user(app, "sysadmin")
    assert sysadmin.post(f"/security/users/{people['econ']}/reset-password").status_code == 200
    assert victim.get("/").status_code == 302                           # its session ended
    assert sysadmin.post(f"/security/users/{people['econ']}/active", data={"active": "0"}).status_code == 302
    refused = app.test_client().post("/login", data={"username": "econ", "password": PASSWORD})
    assert refused.status_code == 401
    assert [e.event for e in security_events(app, "user_disabled")] == ["user_disabled"]


def test_security_admin_changes_memberships_logged_as_a_permission_change(app, people):
    holder = as_user(app, "econ")
    secadmin = as_user(app, "secadmin")
    response = secadmin.post(f"/security/access/{people['econ']}/memberships",
                             data={"memberships": "econ_it/reviewer\ndev_reform/reviewer"})
    assert response.status_code == 302
    with app.extensions["parkflow"].db.read() as s:
        held = set(s.execute(select(Membership.department_code, Membership.role)
                             .where(Membership.user_id == people["econ"])).all())
    assert held == {("econ_it", "reviewer"), ("dev_reform", "reviewer")}
    [event] = security_events(app, "permission_changed")
    assert event.username == "secadmin" and event.details["added"] == [["dev_reform", "reviewer"]]
    assert holder.get("/").status_code == 302                           # capacities changed: sign in again
    before = snapshot(app)
    bad = secadmin.post(f"/security/access/{people['econ']}/memberships", data={"memberships": "nowhere/king"})
    assert bad.status_code == 303 and snapshot(app) == before


def test_policy_can_only_be_tightened_and_takes_effect(app, people):
    secadmin = as_user(app, "secadmin")
    before = snapshot(app)
    loose = secadmin.post("/security/policy", data={"min_length": 8, "classes": 3, "max_failures": 10,
                                                   "lock_minutes": 30, "idle_minutes": 30, "admin_idle_minutes": 15,
                                                   "absolute_hours": 12, "max_age_days": 90})
    assert loose.status_code == 422 and "不得低于等保三级" in text(loose)
    assert snapshot(app) == before
    tight = secadmin.post("/security/policy", data={"min_length": 14, "classes": 3, "max_failures": 3,
                                                   "lock_minutes": 60, "idle_minutes": 20, "admin_idle_minutes": 10,
                                                   "absolute_hours": 8, "max_age_days": 60})
    assert tight.status_code == 302
    [event] = security_events(app, "policy_set")
    assert event.details["policy"]["max_failures"] == 3 and "min_length" in event.details["changed"]
    client = app.test_client()
    for _ in range(3):
        client.post("/login", data={"username": "promo2", "password": "wrong"})
    [lock] = security_events(app, "locked")
    assert lock.username == "promo2" and lock.details["minutes"] == 60


def test_audit_admin_reads_the_security_log(app, people):
    app.test_client().post("/login", data={"username": "promo1", "password": "wrong"})
    auditor = as_user(app, "auditadmin")
    page = text(auditor.get("/security/log?event=login_failed"))
    assert "login_failed" in page and "promo1" in page
    assert "审批决策记录" in text(auditor.get("/security/")) and auditor.get("/compliance/").status_code == 200


def test_stand_in_acts_on_behalf_and_the_trail_shows_both(app, people, clock):
    iid = start(app, people)
    [task] = open_tasks(app, iid)
    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        svc.workflow.act(s, people["promo1"], iid, Request("claim", task.id))
    promo1 = as_user(app, "promo1")
    day = clock().date()
    named = promo1.post("/security/substitutions", data={"substitute": "econ", "start_date": day.isoformat(),
                                                          "end_date": (day + timedelta(days=7)).isoformat(),
                                                          "reason": "出差"})
    assert named.status_code == 302
    assert "出差" in text(as_user(app, "econ").get("/security/substitutions"))
    with svc.db.read() as s:
        assert substitutions.standing_in_for(s, people["econ"], now=clock()) == [(people["promo1"], "promo1")]
    with svc.db.write() as s:
        svc.workflow.act(s, people["econ"], iid, Request("approve", task.id, opinion="代为同意"),
                         on_behalf_of=people["promo1"])
    with svc.db.read() as s:
        event = s.scalars(select(TrailEvent).where(TrailEvent.instance_id == iid, TrailEvent.action == "approve")).one()
    assert event.actor_id == people["econ"] and event.on_behalf_of_id == people["promo1"]
    with svc.db.read() as s:
        [sub_id] = [r.id for r in substitutions.involving(s, people["promo1"], now=clock())]
    assert promo1.post(f"/security/substitutions/{sub_id}/end").status_code == 302
    assert as_user(app, "econ").post(f"/security/substitutions/{sub_id}/end").status_code == 404
    assert [e.event for e in security_events(app, "substitution_ended")] == ["substitution_ended"]


def test_administrators_hold_no_memberships_and_no_demo_accounts_in_production(db, database_url, defs_dir):
    from workflow_app.demo import PEOPLE
    assert all(not p.memberships for p in PEOPLE if p.admin_role)
    assert {p.admin_role for p in PEOPLE if p.admin_role} == {"system", "security", "audit"}
    cli = Cli(database_url, defs_dir)
    cli.app.config["DEMO_ALLOWED"] = False
    try:
        result = cli("demo", "load")
        with cli.app.extensions["parkflow"].db.read() as s:
            assert s.scalar(select(User.id).where(User.username == "sysadmin")) is None
    finally:
        cli.close()
    assert result.exit_code == 1 and "refused" in result.output
