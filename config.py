"""Configuration, read from the environment. `create_app(config)` takes one of these classes.

DATABASE_URL selects the database (SQLite file by default, so a new user needs nothing else);
REDIS_URL the shared store for rate limits in production; SECRET_KEY must be set in production.

Precedence, highest first: environment variables > the instance configuration file (a Python
file, `PARKFLOW_SETTINGS`, default `instance/parkflow.cfg`; not read in tests) > the defaults
below. `create_app` loads the class, then the instance file, then puts back every setting that
the environment gives, and finally `check(config)` refuses to start on a security setting out of
range (ConfigError names the setting, its value and the range).
"""
from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


DEV_SECRET = "dev-only-not-secret"


class ConfigError(RuntimeError):
    """A setting is missing or out of range; the message says which and what is allowed."""


def _int(name: str, default: int) -> int | str:
    """An integer from the environment; anything else is kept as given for `check` to name."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        return raw


# Security settings and their allowed ranges (inclusive). The lower and upper ends stop at the
# 等保 2.0 level-3 figures (PITFALLS.md), so a deployment can only be as strict or stricter.
# The security administrator may tighten further at run time (services/security.BOUNDS).
RANGES: dict[str, tuple[int, int]] = {
    "PASSWORD_MIN_LENGTH": (8, 64),
    "LOGIN_MAX_FAILURES": (3, 5),
    "LOGIN_LOCK_MINUTES": (30, 1440),
    "SESSION_IDLE_MINUTES": (5, 30),
    "ADMIN_IDLE_MINUTES": (5, 15),
    "SESSION_ABSOLUTE_HOURS": (1, 12),
    "PASSWORD_MAX_AGE_DAYS": (30, 90),
    "LOG_RETENTION_DAYS": (185, 36500),
    "PROXY_COUNT": (0, 5),
}
# Settings the environment may give (so they win over the instance file).
ENVIRONMENT_KEYS = ("SECRET_KEY", "DATABASE_URL", "PROCESS_DEFS", "CALENDARS", "REDIS_URL",
                    "SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "URGE_INTERVAL_HOURS", *RANGES)


def check(config) -> None:
    """Refuse to start on a security setting out of range (a mapping such as app.config).

    `TIME_TRAVEL_TESTS` (only honoured with TESTING) lets a test whose simulated clock crosses
    years keep its people signed in: the session and password-age limits are then not checked."""
    problems = []
    travel = config.get("TESTING") and config.get("TIME_TRAVEL_TESTS")
    for name, (low, high) in RANGES.items():
        if travel and name in ("SESSION_IDLE_MINUTES", "SESSION_ABSOLUTE_HOURS", "PASSWORD_MAX_AGE_DAYS",
                               "ADMIN_IDLE_MINUTES"):
            continue
        value = config.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{name} must be an integer from {low} to {high}, got {value!r}")
    if not travel and not problems and config["ADMIN_IDLE_MINUTES"] > config["SESSION_IDLE_MINUTES"]:
        problems.append("ADMIN_IDLE_MINUTES must not exceed SESSION_IDLE_MINUTES")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET)
    DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'parkflow.db'}")
    PROCESS_DEFS = os.environ.get("PROCESS_DEFS", str(BASE_DIR / "process_defs"))
    CALENDARS = os.environ.get("CALENDARS", str(BASE_DIR / "process_defs" / "calendars"))
    REDIS_URL = os.environ.get("REDIS_URL")
    # HMAC key of the trail anchors (services/anchor.py): kept OUT of the database, e.g. in the
    # environment of the cron job and of whoever runs `flask trail verify`.
    TRAIL_ANCHOR_KEY = os.environ.get("TRAIL_ANCHOR_KEY")
    RATELIMIT_STORAGE_URI = os.environ.get("REDIS_URL", "memory://")
    # Stated, never inherited: Flask-Limiter's init_app defaults a missing RATELIMIT_ENABLED to
    # whatever the previous app in the process had, so one app with limits off would switch them
    # off for the next.
    RATELIMIT_ENABLED = True
    # A moving window: a fixed window lets a burst straddle the minute boundary (2x the limit).
    RATELIMIT_STRATEGY = "moving-window"
    BABEL_DEFAULT_LOCALE = "zh_Hans_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    # No gettext catalogues: page wording is written as (Chinese, English) pairs beside each other
    # (web/pages.tr, web/labels.pick), so neither language can fall behind; Flask-Babel only
    # carries the chosen locale. tests/web/test_languages.py checks both languages page by page.
    WTF_CSRF_TIME_LIMIT = None  # the session lifetime limits the token already
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    SESSION_IDLE_MINUTES = _int("SESSION_IDLE_MINUTES", 30)
    ADMIN_IDLE_MINUTES = _int("ADMIN_IDLE_MINUTES", 15)
    SESSION_ABSOLUTE_HOURS = _int("SESSION_ABSOLUTE_HOURS", 12)
    LOGIN_MAX_FAILURES = _int("LOGIN_MAX_FAILURES", 5)
    LOGIN_LOCK_MINUTES = _int("LOGIN_LOCK_MINUTES", 30)
    PASSWORD_MAX_AGE_DAYS = _int("PASSWORD_MAX_AGE_DAYS", 90)
    PASSWORD_MIN_LENGTH = _int("PASSWORD_MIN_LENGTH", 12)
    LOG_RETENTION_DAYS = _int("LOG_RETENTION_DAYS", 185)  # 网络安全法 第二十一条: never below 185
    # Reverse proxies in front of the app that set X-Forwarded-For/-Proto/-Host (werkzeug ProxyFix
    # trusts exactly that many hops; 0 = none, the client connects directly).
    PROXY_COUNT = _int("PROXY_COUNT", 0)
    INSTANCE_CONFIG = os.environ.get("PARKFLOW_SETTINGS", str(BASE_DIR / "instance" / "parkflow.cfg"))
    # Notification e-mail, sent by the SLA sweeper (`flask sla sweep` / `worker`); unset: no e-mail.
    SMTP_HOST = os.environ.get("SMTP_HOST")
    SMTP_PORT = int(os.environ["SMTP_PORT"]) if os.environ.get("SMTP_PORT") else None  # default by SMTP_SECURITY: 25 / 587 / 465
    SMTP_FROM = os.environ.get("SMTP_FROM", "parkflow@localhost")
    SMTP_SECURITY = os.environ.get("SMTP_SECURITY", "none")  # none | starttls | ssl
    SMTP_USER = os.environ.get("SMTP_USER")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD")
    SMTP_CA_FILE = os.environ.get("SMTP_CA_FILE")  # a private CA for the mail gateway's certificate
    SMTP_TIMEOUT = float(os.environ.get("SMTP_TIMEOUT", "10"))
    PUBLIC_URL = os.environ.get("PUBLIC_URL")  # e.g. https://parkflow.zhenhai.gov.cn: links in e-mail
    URGE_INTERVAL_HOURS = float(os.environ.get("URGE_INTERVAL_HOURS", "24"))  # 催办: once per task per N hours
    # Attachments (stored in the database): per-file limit and the allowed types (extensions; the
    # content is checked to match). A request larger than MAX_CONTENT_LENGTH is refused with 413.
    ATTACHMENT_MAX_BYTES = int(os.environ.get("ATTACHMENT_MAX_BYTES", str(20 * 1024 * 1024)))
    ATTACHMENT_TYPES = os.environ.get("ATTACHMENT_TYPES", "pdf,ofd,docx,xlsx,doc,xls,png,jpg,jpeg,zip")
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(100 * 1024 * 1024)))
    DEMO_ALLOWED = True
    TESTING = False


class DevConfig(Config):
    DEBUG = False
    TRAIL_ANCHOR_KEY = os.environ.get("TRAIL_ANCHOR_KEY", "dev-only-anchor-key")


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    TRAIL_ANCHOR_KEY = os.environ.get("TRAIL_ANCHOR_KEY", "test-anchor-key")
    DATABASE_URL = os.environ.get("TEST_APP_DATABASE_URL", "sqlite://")
    RATELIMIT_STORAGE_URI = "memory://"
    INSTANCE_CONFIG = None  # a developer's instance file must not change what the tests see


class ProdConfig(Config):
    DEMO_ALLOWED = False
    SESSION_COOKIE_SECURE = True
    PROXY_COUNT = _int("PROXY_COUNT", 1)  # behind one reverse proxy (TLS termination) by default

    def __init__(self) -> None:
        # Checked against the environment when the app is made: several workers must share one
        # SECRET_KEY (sessions, sealed TOTP secrets) and one Redis (rate limits: a per-process
        # memory store would multiply every limit by the number of workers).
        missing = [name for name in ("SECRET_KEY", "REDIS_URL") if not os.environ.get(name)]
        if missing:
            raise ConfigError(f"production needs {' and '.join(missing)} set in the environment")
        if os.environ["SECRET_KEY"] == DEV_SECRET or len(os.environ["SECRET_KEY"]) < 16:
            raise ConfigError("SECRET_KEY must be a random value of at least 16 characters in production")
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            raise ConfigError("production needs DATABASE_URL pointing at PostgreSQL")
        self.SECRET_KEY = os.environ["SECRET_KEY"]
        self.REDIS_URL = self.RATELIMIT_STORAGE_URI = os.environ["REDIS_URL"]


def by_name(name: str | None) -> type[Config]:
    return {"dev": DevConfig, "test": TestConfig, "prod": ProdConfig}.get(name or "dev", DevConfig)
