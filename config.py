"""Configuration, read from the environment. `create_app(config)` takes one of these classes.

DATABASE_URL selects the database (SQLite file by default, so a new user needs nothing else);
REDIS_URL the shared store for rate limits in production; SECRET_KEY must be set in production.
"""
from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret")
    DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'parkflow.db'}")
    PROCESS_DEFS = os.environ.get("PROCESS_DEFS", str(BASE_DIR / "process_defs"))
    CALENDARS = os.environ.get("CALENDARS", str(BASE_DIR / "process_defs" / "calendars"))
    REDIS_URL = os.environ.get("REDIS_URL")
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
    SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "30"))
    ADMIN_IDLE_MINUTES = int(os.environ.get("ADMIN_IDLE_MINUTES", "15"))
    SESSION_ABSOLUTE_HOURS = int(os.environ.get("SESSION_ABSOLUTE_HOURS", "12"))
    LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
    LOGIN_LOCK_MINUTES = int(os.environ.get("LOGIN_LOCK_MINUTES", "30"))
    PASSWORD_MAX_AGE_DAYS = int(os.environ.get("PASSWORD_MAX_AGE_DAYS", "90"))
    LOG_RETENTION_DAYS = max(185, int(os.environ.get("LOG_RETENTION_DAYS", "185")))
    # Notification e-mail, sent by the SLA sweeper (`flask sla sweep` / `worker`); unset: no e-mail.
    SMTP_HOST = os.environ.get("SMTP_HOST")
    SMTP_PORT = int(os.environ.get("SMTP_PORT", "25"))
    SMTP_FROM = os.environ.get("SMTP_FROM", "parkflow@localhost")
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


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    DATABASE_URL = os.environ.get("TEST_APP_DATABASE_URL", "sqlite://")
    RATELIMIT_STORAGE_URI = "memory://"


class ProdConfig(Config):
    DEMO_ALLOWED = False
    SESSION_COOKIE_SECURE = True

    def __init__(self) -> None:
        if not os.environ.get("SECRET_KEY"):
            raise RuntimeError("SECRET_KEY must be set in production")
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            raise RuntimeError("production needs DATABASE_URL pointing at PostgreSQL")


def by_name(name: str | None) -> type[Config]:
    return {"dev": DevConfig, "test": TestConfig, "prod": ProdConfig}.get(name or "dev", DevConfig)
