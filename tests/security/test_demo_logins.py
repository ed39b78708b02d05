"""`make run`'s demo with the second factor enforced (as outside tests): the people who must use
one are pre-enrolled, `flask demo otp USER` prints their current code, and every login that
`flask demo logins` prints (the README's) signs in — password, then the code where needed."""
from __future__ import annotations

from pathlib import Path

import pytest

from workflow_app.demo import DEMO_PASSWORD, PEOPLE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_app(make_app):
    app = make_app(enforce_2fa=True, PROCESS_DEFS=str(ROOT / "process_defs"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["defs", "sync"]).exit_code == 0
    loaded = runner.invoke(args=["demo", "load"])
    assert loaded.exit_code == 0, loaded.output
    return app, runner


def test_every_printed_login_works(demo_app):
    app, runner = demo_app
    printed = runner.invoke(args=["demo", "logins"]).output
    assert f"password: {DEMO_PASSWORD}" in printed
    needing = {p.username for p in PEOPLE if p.admin_role or any(d == "sasac" or r == "compliance"
                                                                  for d, r in p.memberships)}
    assert needing >= {"sysadmin", "secadmin", "auditadmin", "gz_head", "auditor"}
    for person in PEOPLE:
        assert person.username in printed
        client = app.test_client()
        first = client.post("/login", data={"username": person.username, "password": DEMO_PASSWORD})
        assert first.status_code == 302, (person.username, first.status_code)
        if person.username in needing:
            assert f"flask demo otp {person.username}" in printed
            assert "/login/code" in first.headers["Location"], person.username
            code = runner.invoke(args=["demo", "otp", person.username])
            assert code.exit_code == 0 and code.output.strip().isdigit() and len(code.output.strip()) == 6
            second = client.post("/login/code", data={"code": code.output.strip()})
            assert second.status_code == 302 and "/login" not in second.headers["Location"], person.username
        else:
            assert "/login" not in first.headers["Location"], person.username
        page = client.get("/")
        assert page.status_code in (200, 302) and "/login" not in page.headers.get("Location", ""), person.username
        if page.status_code == 302:   # nothing asked first (no enrolment or password change pending)
            assert "/security/totp" not in page.headers["Location"] and "/password" not in page.headers["Location"]


def test_demo_otp_refuses_unknown_and_password_only_people(demo_app):
    _app, runner = demo_app
    assert runner.invoke(args=["demo", "otp", "nobody"]).exit_code == 1
    plain = runner.invoke(args=["demo", "otp", "zt_submit"])
    assert plain.exit_code == 1 and "password only" in plain.output


def test_demo_otp_is_refused_in_production(make_app):
    app = make_app(DEMO_ALLOWED=False)
    result = app.test_cli_runner().invoke(args=["demo", "otp", "auditor"])
    assert result.exit_code == 1 and "never available in production" in result.output
