"""`flask` commands: database, definitions, trail and demo data. Each command is a thin shell over
a service function, so what the CLI does is what the tests test."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .container import services
from .engine.loader import load_catalogue
from .engine.schema import ProcessDef

db_cli = AppGroup("db", help="Database schema (Alembic).")
defs_cli = AppGroup("defs", help="Process definitions: validate, schema, sync, diagram, migrate.")
trail_cli = AppGroup("trail", help="The decision trail.")
tokens_cli = AppGroup("tokens", help="API bearer tokens for scripts.")
demo_cli = AppGroup("demo", help="Demo organisation and data (refused in production).")


def register(app: Flask) -> None:
    from . import cli_portfolio, cli_security, cli_sla

    for group in (db_cli, defs_cli, trail_cli, tokens_cli, demo_cli):
        app.cli.add_command(group)
    cli_portfolio.register(app)
    cli_sla.register(app)
    cli_security.register(app)  # trail archive, the archive-aware trail verify, backup, restore


def cli_log(session, event: str, *, outcome: str = "ok", **details: object) -> None:
    """A command-line action in the security log: the operating-system user who ran it, source
    `cli` (the security log records administrative actions, not only those made in pages)."""
    import getpass

    from .services.accounts import log

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    log(session, event, now=services().clock(), username=f"cli:{who}"[:64], ip="cli", outcome=outcome, **details)


# ------------------------------------------------------------------ db
def alembic_upgrade(url: str, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    root = Path(__file__).resolve().parent.parent
    cfg = AlembicConfig(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, revision)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create or update the schema (alembic upgrade head)."""
    url = services().db.url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    alembic_upgrade(url)
    click.echo("schema up to date")


# ------------------------------------------------------------------ defs
@defs_cli.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
def defs_validate(paths: tuple[str, ...]) -> None:
    """Check definitions; print FILE:LINE: KEY: message per problem and exit 1 if any."""
    from .domain.monitoring import rules_files, validate_rules_files

    targets = [Path(p) for p in paths] or [Path(current_app.config["PROCESS_DEFS"])]
    rules, targets = rules_files(targets)  # rules/*.yaml (warning rules) have their own format
    catalogue = load_catalogue(targets) if targets else None
    problems = (catalogue.problems if catalogue else []) + validate_rules_files(rules)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(1)
    if catalogue is not None:
        click.echo(f"{len(catalogue.specs)} definition(s) valid: {', '.join(sorted(catalogue.specs))}")
    if rules:
        click.echo(f"{len(rules)} rules file(s) valid: {', '.join(p.name for p in rules)}")


@defs_cli.command("schema")
def defs_schema() -> None:
    """Print the JSON Schema of the definition format (for editors)."""
    click.echo(json.dumps(ProcessDef.json_schema(), ensure_ascii=False, indent=2))


@defs_cli.command("sync")
def defs_sync() -> None:
    """Store each definition; a changed file becomes a new version."""
    svc = services()
    catalogue = svc.store.catalogue()
    if catalogue.problems:
        for problem in catalogue.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    with svc.db.write() as s:
        results = svc.store.sync(s, svc.clock(), catalogue=catalogue)
        cli_log(s, "definitions_synced", created=[f"{r.key}@{r.revision}" for r in results if r.created],
                definitions=len(results))
    for r in results:
        click.echo(f"{r.key}: revision {r.revision} (version {r.version}, {r.content_hash[:12]})"
                   f"{' new' if r.created else ''}")
        if r.warning:
            click.echo(f"warning: {r.warning}", err=True)


@defs_cli.command("diagram")
@click.argument("key")
def defs_diagram(key: str) -> None:
    """Print the Mermaid diagram of the latest version of KEY."""
    from .engine.diagram import mermaid

    from .engine.errors import NotFound

    svc = services()
    try:
        with svc.db.read() as s:
            _id, spec = svc.store.latest(s, key)
    except NotFound as missing:
        click.echo(str(missing), err=True)
        sys.exit(1)
    click.echo(mermaid(spec))


@defs_cli.command("migrate")
@click.argument("key")
@click.option("--from", "from_revision", type=int, required=True, help="revision the instances are on")
@click.option("--to", "to_revision", type=int, required=True, help="revision to move them to")
@click.option("--map", "mapping", multiple=True, help="OLD_STEP=NEW_STEP (repeat); unmapped steps keep their id")
def defs_migrate(key: str, from_revision: int, to_revision: int, mapping: tuple[str, ...]) -> None:
    """Move running instances of KEY from one revision to another, recorded in the trail."""
    from .services.migration import migrate_instances

    bad = [m for m in mapping if m.count("=") != 1 or not all(m.split("="))]
    if bad:
        click.echo(f"error: --map takes OLD_STEP=NEW_STEP, got {', '.join(bad)}", err=True)
        sys.exit(1)
    steps = dict(m.split("=", 1) for m in mapping)
    svc = services()
    try:
        with svc.db.write() as s:
            moved = migrate_instances(s, svc.store, svc.workflow, key, from_revision, to_revision, steps)
            cli_log(s, "instances_migrated", key=key, from_revision=from_revision, to_revision=to_revision,
                    steps=steps, instances=len(moved))
    except ValueError as exc:
        with svc.db.write() as s:
            cli_log(s, "instances_migrated", outcome="refused", key=key, from_revision=from_revision,
                    to_revision=to_revision, reason=str(exc)[:300])
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{len(moved)} instance(s) moved to revision {to_revision}")


# ------------------------------------------------------------------ trail
# `flask trail verify` and `flask trail archive` live in cli_security.py (one verification:
# services/trail.verify, with the archive files and the security log's chain on top).


# ------------------------------------------------------------------ tokens
@tokens_cli.command("create")
@click.argument("username")
@click.option("--name", default="script", help="what the token is for")
@click.option("--days", default=90, type=click.IntRange(1, 365))
@click.option("--department", default=None, help="acting department (must be one of the user's)")
@click.option("--role", default=None)
def tokens_create(username: str, name: str, days: int, department: str | None, role: str | None) -> None:
    """Issue a token for USERNAME; it is printed once and only its hash is stored."""
    from sqlalchemy import select

    from .models import User
    from .services.tokens import create_token

    svc = services()
    with svc.db.write() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            click.echo(f"error: no user {username!r}", err=True)
            sys.exit(1)
        token = create_token(s, user.id, name, days, department, role, now=svc.clock())
        cli_log(s, "cli_token_created", target=username, name=name, days=days)
    click.echo(token)


@tokens_cli.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    from .services.tokens import revoke_token

    svc = services()
    with svc.db.write() as s:
        live = revoke_token(s, token_id, now=svc.clock())
        cli_log(s, "cli_token_revoked", token_id=token_id, outcome="ok" if live else "refused")
    click.echo("revoked" if live else "no live token with that id")


# ------------------------------------------------------------------ demo
@demo_cli.command("load")
def demo_load() -> None:
    """Load the demo organisation, people, portfolio and applications (idempotent)."""
    from .demo import load_demo

    if not current_app.config.get("DEMO_ALLOWED", False):
        click.echo("refused: demo data is never loaded in production", err=True)
        sys.exit(1)
    svc = services()
    summary = load_demo(svc, current_app.secret_key)
    click.echo(summary)


@demo_cli.command("logins")
def demo_logins() -> None:
    """Print the demo accounts."""
    from sqlalchemy import select

    from .demo import DEMO_PASSWORD, PEOPLE
    from .models import User

    with services().db.read() as s:
        with_code = set(s.scalars(select(User.username).where(User.totp_secret.is_not(None))))
    click.echo("\nParkFlow 演示账号 (demo logins) — http://127.0.0.1:5000  password: " + DEMO_PASSWORD)
    for p in PEOPLE:
        note = "  + 动态验证码: flask demo otp " + p.username if p.username in with_code else ""
        click.echo(f"  {p.username:<14} {p.name:<6} {p.title}{note}")
    if with_code:
        click.echo("\n带「动态验证码」的账号登录时还需输入 6 位验证码 (second factor): "
                   "`.venv/bin/flask demo otp USER` 打印当前验证码（每个验证码只能用一次，30 秒一换）。")
    click.echo("")


@demo_cli.command("otp")
@click.argument("username")
def demo_otp(username: str) -> None:
    """Print the current second-factor code of a demo person (what their app would show)."""
    from .demo import current_code
    from .services.second_factor import SealError

    if not current_app.config.get("DEMO_ALLOWED", False):
        click.echo("refused: demo commands are never available in production", err=True)
        sys.exit(1)
    svc = services()
    try:
        with svc.db.read() as s:
            code = current_code(s, username, svc.clock(), current_app.secret_key)
    except LookupError as exc:
        click.echo(f"error: {exc.args[0]}", err=True)
        sys.exit(1)
    except SealError:
        click.echo("error: the second factor was enrolled under another SECRET_KEY; run `flask demo load` "
                   "again to re-enrol the demo people", err=True)
        sys.exit(1)
    click.echo(code)
