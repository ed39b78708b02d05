"""Deployment settings: security settings range-checked at start-up, the precedence environment >
instance file > defaults, production's required SECRET_KEY and REDIS_URL, ProxyFix trusting
exactly PROXY_COUNT hops, and gunicorn (really started) sending no `Server` banner."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from config import RANGES, ConfigError, TestConfig, check
from tests.security.conftest import security_events
from workflow_app import create_app

ROOT = Path(__file__).resolve().parents[2]


def valid() -> dict:
    return {name: getattr(TestConfig, name) for name in RANGES}


# ---------------------------------------------------------------- ranges
def test_the_shipped_defaults_pass():
    check(valid())


@pytest.mark.parametrize("name", sorted(RANGES))
def test_each_security_setting_out_of_range_refuses_to_start(name):
    low, high = RANGES[name]
    for bad in (low - 1, high + 1, "abc", None, True):
        with pytest.raises(ConfigError, match=f"{name} must be an integer from {low} to {high}"):
            check({**valid(), name: bad})
    edges = {**valid(), name: low}
    if name == "SESSION_IDLE_MINUTES":
        edges["ADMIN_IDLE_MINUTES"] = low
    check(edges)
    check({**valid(), name: high})


def test_administrators_may_not_idle_longer_than_everyone_else():
    with pytest.raises(ConfigError, match="ADMIN_IDLE_MINUTES must not exceed"):
        check({**valid(), "SESSION_IDLE_MINUTES": 10, "ADMIN_IDLE_MINUTES": 15})


def test_create_app_checks(db):
    config = type("C", (TestConfig,), {"DATABASE_URL": db.url, "LOGIN_MAX_FAILURES": 50})
    with pytest.raises(ConfigError, match="LOGIN_MAX_FAILURES must be an integer from 3 to 5, got 50"):
        create_app(config)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in RANGES and k not in ("SECRET_KEY", "REDIS_URL", "DATABASE_URL", "PARKFLOW_SETTINGS")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_environment_beats_instance_file_beats_defaults(tmp_path):
    settings = tmp_path / "parkflow.cfg"
    settings.write_text("LOGIN_LOCK_MINUTES = 60\nSESSION_IDLE_MINUTES = 20\n", encoding="utf-8")
    out = run_python("from workflow_app import create_app; a = create_app('dev'); "
                     "print(a.config['LOGIN_LOCK_MINUTES'], a.config['SESSION_IDLE_MINUTES'], "
                     "a.config['LOGIN_MAX_FAILURES'], a.extensions['parkflow'].policy.idle_minutes)",
                     PARKFLOW_SETTINGS=str(settings), SESSION_IDLE_MINUTES="25",
                     DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["60", "25", "5", "25"]


def test_instance_file_out_of_range_refuses_to_start(tmp_path):
    settings = tmp_path / "parkflow.cfg"
    settings.write_text("LOGIN_LOCK_MINUTES = 5\n", encoding="utf-8")
    out = run_python("from workflow_app import create_app; create_app('dev')", PARKFLOW_SETTINGS=str(settings),
                     DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    assert out.returncode != 0 and "LOGIN_LOCK_MINUTES must be an integer from 30 to 1440, got 5" in out.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "REDIS_URL"])
def test_production_requires_secret_key_and_redis(missing):
    env = {"SECRET_KEY": "k" * 32, "REDIS_URL": "redis://127.0.0.1:6379/3", "DATABASE_URL": "postgresql://u@h/db"}
    del env[missing]
    out = run_python("from workflow_app import create_app; create_app('prod')", **env)
    assert out.returncode != 0 and f"production needs {missing} set" in out.stderr


def test_production_refuses_the_development_secret():
    out = run_python("from workflow_app import create_app; create_app('prod')", SECRET_KEY="dev-only-not-secret",
                     REDIS_URL="redis://127.0.0.1:6379/3", DATABASE_URL="postgresql://u@h/db")
    assert out.returncode != 0 and "SECRET_KEY must be a random value" in out.stderr


# ---------------------------------------------------------------- ProxyFix
@pytest.mark.parametrize("proxies, forwarded, seen", [
    (0, "203.0.113.9", "127.0.0.1"),                   # no proxy: the header is the client's word only
    (1, "203.0.113.9", "203.0.113.9"),                 # one proxy: it set the last hop
    (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),   # a forged first entry is not believed
    (2, "198.51.100.1, 203.0.113.9", "198.51.100.1"),
])
def test_proxy_fix_trusts_exactly_the_configured_hops(make_app, people, proxies, forwarded, seen):
    app = make_app(PROXY_COUNT=proxies)
    app.test_client().post("/login", data={"username": "promo1", "password": "wrong"},
                           headers={"X-Forwarded-For": forwarded})
    [failure] = security_events(app, "login_failed")
    assert failure.ip == seen


# ---------------------------------------------------------------- gunicorn's banner
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_headers(config_file: Path, tmp_path: Path) -> dict[str, str]:
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k not in RANGES and k != "PARKFLOW_SETTINGS"},
           "PARKFLOW_CONFIG": "dev", "DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}", "SECRET_KEY": "g" * 32}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(config_file), "-w", "1",
                             "-b", f"127.0.0.1:{port}", "workflow_app:create_app()"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail("gunicorn died: " + proc.stderr.read().decode()[-2000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
                    return {k.lower(): v for k, v in response.headers.items()}
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("gunicorn did not answer")
                time.sleep(0.3)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_gunicorn_sends_no_server_banner(tmp_path):
    headers = served_headers(ROOT / "gunicorn.conf.py", tmp_path)
    assert "server" not in headers, headers.get("server")
    assert headers["x-frame-options"] == "DENY"
    # the control: gunicorn without our configuration does announce itself, so the check above
    # would catch a gunicorn upgrade that moved the banner out of reach of gunicorn.conf.py
    empty = tmp_path / "plain.conf.py"
    empty.write_text("", encoding="utf-8")
    assert served_headers(empty, tmp_path).get("server", "").startswith("gunicorn")
