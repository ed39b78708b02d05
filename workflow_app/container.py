"""The per-app service objects (database, definitions, workflow, calendar), made by create_app and
reached by views through `services()`. They hold no request state; caches are keyed by immutable
content, so several app processes never disagree."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from flask import current_app

from .database import Database
from .engine.calendar import WorkingCalendar
from .services.accounts import Policy
from .services.definitions import DefinitionStore
from .services.workflow import Workflow


@dataclass
class Services:
    db: Database
    store: DefinitionStore
    calendar: WorkingCalendar
    workflow: Workflow
    policy: Policy
    clock: Callable[[], datetime]

    @classmethod
    def build(cls, config: dict, clock: Callable[[], datetime] | None = None) -> "Services":
        clock = clock or (lambda: datetime.now(timezone.utc))
        db = Database(config["DATABASE_URL"])
        store = DefinitionStore(config["PROCESS_DEFS"])
        calendar = WorkingCalendar.from_directory(Path(config["CALENDARS"]))
        policy = Policy(min_length=config.get("PASSWORD_MIN_LENGTH", 12),
                        max_failures=config["LOGIN_MAX_FAILURES"], lock_minutes=config["LOGIN_LOCK_MINUTES"],
                        idle_minutes=config["SESSION_IDLE_MINUTES"],
                        admin_idle_minutes=config["ADMIN_IDLE_MINUTES"],
                        absolute_hours=config["SESSION_ABSOLUTE_HOURS"],
                        max_age_days=config["PASSWORD_MAX_AGE_DAYS"])
        hours = float(config.get("URGE_INTERVAL_HOURS", 24) or 0)  # 催办: once per task per N hours; 0 = no limit
        workflow = Workflow(store, calendar, clock, urge_interval=timedelta(hours=hours) if hours > 0 else None)
        return cls(db, store, calendar, workflow, policy, clock)


def services() -> Services:
    return current_app.extensions["parkflow"]
