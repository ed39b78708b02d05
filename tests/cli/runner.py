"""Building the Flask app for CLI tests: `create_app(config)` with the test database and a
definitions directory, run through Flask's CLI test runner."""
from __future__ import annotations

from pathlib import Path

from click.testing import Result

from config import TestConfig
from workflow_app import create_app

ROOT = Path(__file__).resolve().parents[2]


def cli_config(database_url: str, defs_dir: Path | str) -> TestConfig:
    config = TestConfig()
    config.DATABASE_URL = database_url
    config.PROCESS_DEFS = str(defs_dir)
    config.CALENDARS = str(ROOT / "process_defs" / "calendars")
    return config


class Cli:
    def __init__(self, database_url: str, defs_dir: Path | str):
        self.app = create_app(cli_config(database_url, defs_dir))
        self.runner = self.app.test_cli_runner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(args=list(args))

    def close(self) -> None:
        self.app.extensions["parkflow"].db.dispose()
