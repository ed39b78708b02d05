"""The commands the README and docs promise exist on the app that `flask` really builds (the
tests of each command module must not be the only place that registers it)."""
from __future__ import annotations

from workflow_app import create_app

from config import TestConfig

DOCUMENTED = {
    "db": {"upgrade"},
    "defs": {"validate", "schema", "sync", "diagram", "migrate"},
    "trail": {"verify", "archive", "anchor"},
    "tokens": {"create"},
    "demo": {"load", "logins"},
    "sla": {"sweep", "worker"},
    "calendar": {"load", "show"},
    "portfolio": set(),
    "monitor": set(),
    "match": set(),
    "backup": set(),
    "restore": set(),
}


def test_every_documented_command_is_registered():
    app = create_app(TestConfig)
    commands = app.cli.commands
    for name, subcommands in DOCUMENTED.items():
        assert name in commands, f"flask {name} is missing"
        have = set(getattr(commands[name], "commands", {}))
        assert subcommands <= have, f"flask {name}: missing {sorted(subcommands - have)}"


def test_trail_verify_reads_archives():
    """The archive-aware verify (cli_security) is the one registered, not the plain one."""
    verify = create_app(TestConfig).cli.commands["trail"].commands["verify"]
    assert "archives" in {p.name for p in verify.params}
