"""`flask` commands for retention, archives and backups (等保: 安全审计, 数据备份恢复):

    flask trail archive --before 2026-01-01 OUT.jsonl   finished instances' events -> archive file
    flask trail verify [--archive FILE ...]             every chain, and the archives given
    flask backup OUT                                     the whole database
    flask restore IN                                     replace it, then verify the trail
    flask users create-admin NAME --role R --name N      an administrator (password prompted / stdin)

`register(app)` adds them (the archive-aware `trail verify` takes the place of the plain one: same
output and exit codes, plus `--archive`). Thin shells over services/archive.py and backup.py.
"""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from .container import services


users_cli = AppGroup("users", help="Accounts the server's operator manages (administrators).")


def register(app: Flask) -> None:
    from .cli import trail_cli

    trail_cli.add_command(trail_archive, "archive")
    trail_cli.add_command(trail_verify, "verify")
    trail_cli.add_command(trail_anchor, "anchor")
    app.cli.add_command(backup_command, "backup")
    app.cli.add_command(restore_command, "restore")
    app.cli.add_command(users_cli)


def operator() -> str:
    """Who runs the command (the operating-system account), for the security log."""
    import getpass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _log(event: str, *, outcome: str = "ok", **details) -> None:
    from .cli import cli_log

    with services().db.write() as s:
        cli_log(s, event, outcome=outcome, **details)


# ---------------------------------------------------------------- administrators
@users_cli.command("create-admin")
@with_appcontext
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["system", "security", "audit"]),
              help="系统管理员 / 安全管理员 / 审计管理员 (三员分立)")
@click.option("--name", "display_name", required=True, help="the person's name as shown")
@click.option("--password-stdin", is_flag=True,
              help="read the password from the first line of standard input (for scripts); "
                   "otherwise it is prompted for twice. Never given on the command line.")
def create_admin(username: str, role: str, display_name: str, password_stdin: bool) -> None:
    """Create an administrator account (how production gets its first administrators)."""
    from .services.administration import AdminRefused, create_administrator

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    svc = services()
    try:
        with svc.db.write() as s:
            create_administrator(s, username, display_name, role, password, now=svc.clock(),
                                 policy=svc.policy, operator=operator())
    except AdminRefused as refused:
        _log("admin_created", outcome="refused", target=username[:64], role=role, reason=str(refused)[:300])
        click.echo(f"refused: {refused}", err=True)
        sys.exit(1)
    click.echo(f"administrator {username} ({role}) created; a second factor is enrolled at first sign-in")


def _report(result) -> None:
    """Print the verification and exit 1 on a break (shared by verify and restore)."""
    if result.broken:
        b = result.broken
        click.echo(f"BROKEN in {result.where}: event id {b.event_id}, seq {b.seq}: {b.reason}"
                   f" ({result.checked} events verified before it)")
        sys.exit(1)
    extra = f"; {result.archives} archive(s) verified" if result.archives else ""
    click.echo(f"OK: {result.checked} events in {result.chains} chains verified{extra}")
    for note in result.notes:
        click.echo(f"note: {note}")


@click.command("verify")
@with_appcontext
@click.option("--archive", "archives", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="an archive file written by `flask trail archive` (repeat for several)")
@click.option("--anchors", "anchor_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="an export file written by `flask trail anchor --export` (repeat for several)")
@click.option("--workers", default=1, type=click.IntRange(1, 16),
              help="processes verifying instance ranges in parallel (PostgreSQL)")
def trail_verify(archives: tuple[str, ...], anchor_files: tuple[str, ...], workers: int) -> None:
    """Verify every hash chain (decision trail, the archives given, the security log) and the
    trail anchors (with TRAIL_ANCHOR_KEY); exit 1 naming the first broken event or anchor."""
    from .services import security_log
    from .services.anchor import AnchorRefused
    from .services.archive import verify

    svc = services()
    try:
        with svc.db.read() as s:
            result = verify(s, [Path(a) for a in archives], workers=workers,
                            anchor_key=current_app.config.get("TRAIL_ANCHOR_KEY"),
                            anchor_exports=[Path(a) for a in anchor_files])
    except AnchorRefused as refused:
        click.echo(str(refused), err=True)
        sys.exit(1)
    with svc.db.read() as s:
        rows, broken = security_log.verify(s)
    _log("trail_verify", outcome="ok" if result.ok and broken is None else "error",
         source="cli", events=result.checked, security_rows=rows,
         broken=None if result.ok else result.where)
    if broken is not None and result.ok:
        click.echo(f"BROKEN in the security log: row id {broken.event_id}, seq {broken.seq}: {broken.reason}"
                   f" ({rows} rows verified before it)")
        sys.exit(1)
    _report(result)
    click.echo(f"OK: security log, {rows} rows verified")


@click.command("anchor")
@with_appcontext
@click.option("--export", "export_file", type=click.Path(dir_okay=False),
              help="also append the anchor to this file (JSON lines); keep it off the database host")
def trail_anchor(export_file: str | None) -> None:
    """Write a keyed checkpoint of every chain (cron-able, safe on many nodes at once)."""
    from .services.anchor import AnchorRefused, create, export

    svc = services()
    try:
        made = create(svc.db, current_app.config.get("TRAIL_ANCHOR_KEY"), svc.clock())
    except AnchorRefused as refused:
        click.echo(str(refused), err=True)
        sys.exit(1)
    if made is None:
        click.echo("already anchored by another node just now; nothing written")
        return
    if export_file:
        export(made, Path(export_file))
    click.echo(f"anchor {made.seq}: events up to id {made.last_event_id}, {made.events} events in "
               f"{made.chains} chains, digest {made.digest[:16]}")


@click.command("archive")
@with_appcontext
@click.option("--before", "before", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="archive finished instances whose events all precede this day (Beijing time)")
@click.argument("out", type=click.Path(dir_okay=False))
def trail_archive(before, out: str) -> None:
    """Move finished instances' events older than the retention into OUT (JSON lines)."""
    from .services.archive import ArchiveRefused, archive

    svc = services()
    retention = int(current_app.config.get("LOG_RETENTION_DAYS", 185))
    try:
        with svc.db.write() as s:
            result = archive(s, before.date() if hasattr(before, "date") else date.fromisoformat(before),
                             Path(out), now=svc.clock(), retention_days=max(185, retention))
    except ArchiveRefused as refused:
        _log("trail_archived", outcome="refused", reason=str(refused)[:300])
        click.echo(str(refused), err=True)
        sys.exit(1)
    _log("trail_archived", file=result.path.name, events=result.events, instances=result.instances,
         archive_hash=result.archive_hash)
    click.echo(f"archived {result.events} events of {result.instances} instance(s) to {result.path}; "
               f"final hash {result.archive_hash}")


@click.command("backup")
@with_appcontext
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["sqlite", "pg_custom", "jsonl"]), default=None,
              help="default: sqlite for SQLite, pg_custom (pg_dump) for PostgreSQL, else jsonl")
def backup_command(out: str, fmt: str | None) -> None:
    """Back up the whole database to OUT."""
    from .services.backup import BackupError, backup

    svc = services()
    try:
        used = backup(svc.db, Path(out), fmt=fmt)
    except BackupError as exc:
        _log("backup", outcome="error", reason=str(exc)[:300])
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    _log("backup", file=Path(out).name, format=used)
    click.echo(f"backup written to {out} ({used})")


@click.command("restore")
@with_appcontext
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="do not ask: the database's contents are replaced")
def restore_command(source: str, yes: bool) -> None:
    """Replace the database's contents with the backup SOURCE, then verify the trail."""
    from .services.archive import verify
    from .services.backup import BackupError, restore

    if not yes and not click.confirm("This replaces every row of the database. Continue?", default=False):
        sys.exit(1)
    svc = services()
    try:
        used = restore(svc.db, Path(source))
    except BackupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"restored from {source} ({used})")
    with svc.db.read() as s:
        result = verify(s, anchor_key=current_app.config.get("TRAIL_ANCHOR_KEY"))
    _log("restore", outcome="ok" if result.ok else "error", file=Path(source).name, format=used,
         broken=None if result.ok else result.where)
    _report(result)
