"""Accounts (身份鉴别): every password rule and the KDF parameters actually stored, the configured
minimum length, the operator's administrator command (password never on argv), a reset that
lifts the lock, wrong current passwords on /password counting towards the lock and rate-limited."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from config import ConfigError, TestConfig
from tests.security.conftest import security_events, snapshot
from tests.web.helpers import PASSWORD, as_user, text
from workflow_app import create_app
from workflow_app.models import LoginSession, User
from workflow_app.services import accounts, administration

POLICY = accounts.Policy()
KDF_PREFIX = "scrypt:32768:8:1$"   # werkzeug's method string: scrypt, N=2^15, r=8, p=1


# ---------------------------------------------------------------- the rules, one by one
@pytest.mark.parametrize("password, problem", [
    ("Short#2026a", "至少 12 个字符"),                       # 11 characters
    ("alllowercaseletters", "至少 3 类"),                     # one class
    ("lowercase2026digits", "至少 3 类"),                     # two classes
    ("Xpromo1-Harbour#26", "不能包含用户名"),                  # contains the user name
    ("XPROMO1-harbour#26", "不能包含用户名"),                  # ... in any case
])
def test_each_password_rule_refuses(password, problem):
    problems = accounts.password_problems(password, "promo1", POLICY)
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize("password", ["Harbour#2026x", "harbour-2026-x", "HARBOUR2026x.", "Harbour2026xy"])
def test_passwords_meeting_every_rule_pass(password):
    assert accounts.password_problems(password, "promo1", POLICY) == []


def test_exactly_the_minimum_length_passes_one_less_fails():
    assert accounts.password_problems("Abcdefgh#123", "u", POLICY) == []       # 12
    assert accounts.password_problems("Abcdefg#123", "u", POLICY) != []        # 11
    longer = replace(POLICY, min_length=16)
    assert accounts.password_problems("Abcdefgh#123", "u", longer) != []


def test_the_last_five_passwords_are_refused_the_sixth_is_allowed(clock):
    user = User(username="promo9", display_name="p", password_hash=None)
    used = [f"Harbour#20{n:02d}x" for n in range(7)]
    now = clock()
    for password in used:
        accounts.set_password(user, password, now, policy=POLICY)
    assert len(user.password_history) == 5
    for recent in used[-5:]:          # the current one and the four before it: the last five
        with pytest.raises(ValueError, match="最近 5 次"):
            accounts.set_password(user, recent, now, policy=POLICY)
    accounts.set_password(user, used[-6], now, policy=POLICY)   # the sixth-last is allowed again


def test_every_stored_hash_uses_the_stated_kdf_parameters(app, people, clock):
    from werkzeug.security import check_password_hash

    svc = app.extensions["parkflow"]
    with svc.db.write() as s:
        sysadmin = s.get(User, people["sysadmin"])
        created, first = administration.create_user(s, sysadmin, "newcomer", "新人", now=clock(), policy=svc.policy)
        reset = administration.reset_password(s, sysadmin, people["promo1"], now=clock(), policy=svc.policy)
        changed = s.get(User, people["promo2"])
        accounts.set_password(changed, "Harbour#2026x", clock(), policy=svc.policy)
        hashes = {"created": created.password_hash, "reset": s.get(User, people["promo1"]).password_hash,
                  "changed": changed.password_hash}
    for what, stored in hashes.items():
        assert stored.startswith(KDF_PREFIX), (what, stored[:30])
    assert check_password_hash(hashes["created"], first) and check_password_hash(hashes["reset"], reset)
    # the parameters are ours, not whatever the installed werkzeug defaults to
    assert accounts.HASH_METHOD == "scrypt:32768:8:1"


# ---------------------------------------------------------------- the configured minimum
def test_password_min_length_comes_from_the_configuration(make_app, people):
    app = make_app(PASSWORD_MIN_LENGTH=16)
    assert app.extensions["parkflow"].policy.min_length == 16
    assert make_app().extensions["parkflow"].policy.min_length == 12     # the default


@pytest.mark.parametrize("value", [7, 0, 65, "twelve"])
def test_password_min_length_below_eight_or_nonsense_refuses_to_start(db, value):
    config = type("C", (TestConfig,), {"DATABASE_URL": db.url, "PASSWORD_MIN_LENGTH": value})
    with pytest.raises(ConfigError, match="PASSWORD_MIN_LENGTH must be an integer from 8 to 64"):
        create_app(config)


# ---------------------------------------------------------------- the operator's command
def test_create_admin_reads_the_password_from_stdin_and_logs_it(app, people):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create-admin", "ops.sec", "--role", "security", "--name", "值班安全员",
                                 "--password-stdin"], input="Harbour#2026-ops\n")
    assert result.exit_code == 0, result.output
    assert "Harbour" not in result.output
    [event] = security_events(app, "admin_created")
    assert event.details["target"] == "ops.sec" and event.details["role"] == "security"
    assert event.username.startswith("cli:") and "Harbour" not in str(event.details)
    client = app.test_client()
    signed_in = client.post("/login", data={"username": "ops.sec", "password": "Harbour#2026-ops"})
    assert signed_in.status_code == 302
    with app.extensions["parkflow"].db.read() as s:
        admin = s.scalar(select(User).where(User.username == "ops.sec"))
        assert admin.admin_role == "security" and admin.password_hash.startswith(KDF_PREFIX)
        assert not admin.memberships


def test_create_admin_prompts_twice_when_not_given_stdin(app, people):
    runner = app.test_cli_runner()
    mismatch = runner.invoke(args=["users", "create-admin", "ops.audit", "--role", "audit", "--name", "审计"],
                             input="Harbour#2026-ops\nHarbour#2026-oqs\nHarbour#2026-ops\nHarbour#2026-ops\n")
    assert mismatch.exit_code == 0, mismatch.output
    assert "do not match" in mismatch.output.lower() or "match" in mismatch.output.lower()
    [event] = security_events(app, "admin_created")
    assert event.details["target"] == "ops.audit"


@pytest.mark.parametrize("args, stdin, message", [
    (["ops1", "--role", "system", "--name", "x", "--password", "Harbour#2026-ops"], "", "No such option"),
    (["ops1", "--role", "system", "--name", "x", "--password-stdin"], "short\n", "至少 12 个字符"),
    (["ops1", "--role", "system", "--name", "x", "--password-stdin"], "ops1-Harbour#2026\n", "不能包含用户名"),
    (["sysadmin", "--role", "system", "--name", "x", "--password-stdin"], "Harbour#2026-ops\n", "已存在"),
    (["ops1", "--role", "root", "--name", "x", "--password-stdin"], "Harbour#2026-ops\n", "Invalid value"),
])
def test_create_admin_refusals_write_nothing(app, people, args, stdin, message):
    before = snapshot(app)
    result = app.test_cli_runner().invoke(args=["users", "create-admin", *args], input=stdin)
    assert result.exit_code != 0 and message in result.output
    after = snapshot(app)
    logged = after.pop("security_log") - before.pop("security_log")
    assert after == before                           # no account, nothing else
    refusals = security_events(app, "admin_created")
    if "No such option" in message or "Invalid value" in message:
        assert logged == 0 and not refusals          # click refused before the command ran
    else:                                            # the refusal itself is in the security log
        assert logged == 1 and refusals[0].outcome == "refused" and refusals[0].ip == "cli"


# ---------------------------------------------------------------- a reset lifts the lock
def test_reset_password_clears_the_lockout(app, people, clock):
    client = app.test_client()
    for _ in range(5):
        client.post("/login", data={"username": "promo1", "password": "wrong"})
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        assert s.get(User, people["promo1"]).locked_until > clock()
    with svc.db.write() as s:
        one_time = administration.reset_password(s, s.get(User, people["sysadmin"]), people["promo1"],
                                                 now=clock(), policy=svc.policy)
    with svc.db.read() as s:
        user = s.get(User, people["promo1"])
        assert user.locked_until is None and user.failed_logins == 0
    assert client.post("/login", data={"username": "promo1", "password": one_time}).status_code == 302
    [reset] = security_events(app, "password_reset")
    assert reset.details["was_locked"] is True


# ---------------------------------------------------------------- /password guesses
def change(client, current: str, new: str = "Harbour#2026x", confirm: str | None = None):
    return client.post("/password", data={"current": current, "new": new, "confirm": confirm or new})


def test_wrong_current_password_counts_towards_the_lock(app, people, clock):
    client = as_user(app, "promo1")
    for n in range(4):
        refused = change(client, "wrong")
        assert refused.status_code == 422 and "当前密码不正确" in text(refused)
    locked = change(client, "wrong")
    assert locked.status_code == 302 and locked.headers["Location"].endswith("/login")
    svc = app.extensions["parkflow"]
    with svc.db.read() as s:
        user = s.get(User, people["promo1"])
        assert user.locked_until == clock() + timedelta(minutes=30)
        assert not s.scalars(select(LoginSession).where(LoginSession.user_id == user.id,
                                                        LoginSession.revoked_at.is_(None))).all()
    failures = security_events(app, "login_failed")
    assert [f.details.get("reason") for f in failures] == ["current_password"] * 5
    assert security_events(app, "locked")[0].username == "promo1"
    # the session is gone; and the right password at the login page is refused while locked
    assert client.get("/password").status_code == 401
    assert app.test_client().post("/login", data={"username": "promo1", "password": PASSWORD}).status_code == 401


def test_a_right_current_password_resets_nothing_it_should_not(app, people):
    client = as_user(app, "promo1")
    change(client, "wrong")
    assert change(client, PASSWORD).status_code == 302
    with app.extensions["parkflow"].db.read() as s:
        assert s.get(User, people["promo1"]).password_hash.startswith(KDF_PREFIX)


def test_password_changes_are_rate_limited(make_app, clock):
    from tests.security.conftest import add_crowd

    app = make_app(RATELIMIT_ENABLED=True)
    add_crowd(app, clock())
    client = as_user(app, "promo1")
    for _ in range(10):   # a mismatched confirmation: refused without counting towards the lock
        assert change(client, PASSWORD, confirm="Other#2026xx").status_code == 422
    assert change(client, PASSWORD, confirm="Other#2026xx").status_code == 429


def test_a_lock_from_failed_logins_refuses_the_change_but_keeps_the_session(app, people, clock):
    client = as_user(app, "promo1")
    for _ in range(5):
        app.test_client().post("/login", data={"username": "promo1", "password": "wrong"})
    refused = change(client, PASSWORD)
    assert refused.status_code == 422 and "账户已锁定" in text(refused)
    assert client.get("/password").status_code == 200      # still signed in: not this session's guess
    with app.extensions["parkflow"].db.read() as s:      # unchanged: still the factory's hash
        assert not s.get(User, people["promo1"]).password_hash.startswith(KDF_PREFIX)
