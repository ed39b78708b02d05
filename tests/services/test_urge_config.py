"""`URGE_INTERVAL_HOURS` reaches the service the app builds (催办 at most once per task per N
hours; 0 turns the limit off)."""
from __future__ import annotations

from datetime import timedelta

from config import TestConfig
from workflow_app.container import Services


def build(db, defs_dir, **overrides) -> Services:
    config = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    config.update(DATABASE_URL=db.url, PROCESS_DEFS=str(defs_dir), **overrides)
    return Services.build(config)


def test_the_urge_interval_comes_from_the_configuration(db, defs_dir):
    svc = build(db, defs_dir, URGE_INTERVAL_HOURS=2.5)
    try:
        assert svc.workflow.urge_interval == timedelta(hours=2.5)
    finally:
        svc.db.dispose()


def test_zero_hours_turns_the_limit_off(db, defs_dir):
    svc = build(db, defs_dir, URGE_INTERVAL_HOURS=0)
    try:
        assert svc.workflow.urge_interval is None
    finally:
        svc.db.dispose()
