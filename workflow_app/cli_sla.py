"""`flask` commands for the clock: the SLA sweeper and the official holiday schedules.

    flask sla sweep [--batch N]            one pass: reminders, escalations, deemed consent,
                                           recomputed due dates, e-mail (cron: every minute)
    flask sla worker [--interval 30]       the same in a loop until SIGTERM / SIGINT
    flask calendar load FILE [--by NAME]   store a year's State Council schedule (YAML) in the
                                           database and recompute the provisional due dates
    flask calendar show YEAR               working days, holidays and 调休 days of YEAR, and where
                                           the schedule comes from

Any number of sweepers may run at once (cron on several hosts, workers): see services/sla.py.
`register(app)` adds the groups; cli.register calls it.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import date
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .container import services

sla_cli = AppGroup("sla", help="Time limits: the sweeper (reminders, escalation, deemed consent, e-mail).")
calendar_cli = AppGroup("calendar", help="Official holiday schedules (working-day calendar).")
log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    for group in (sla_cli, calendar_cli):
        app.cli.add_command(group)


def _pass(batch: int):
    from .services import mailer, sla

    svc = services()
    return sla.sweep(svc.db, svc.workflow, svc.clock(), batch=batch,
                     mailer=mailer.from_config(current_app.config))


def _line(stats) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.as_dict().items())


# ------------------------------------------------------------------ sla
@sla_cli.command("sweep")
@click.option("--batch", default=100, type=click.IntRange(1, 10_000), help="instances per transaction")
def sla_sweep(batch: int) -> None:
    """One pass over everything due now; safe to run on several hosts at once."""
    stats = _pass(batch)
    click.echo(_line(stats))
    if stats.errors:
        sys.exit(1)


@sla_cli.command("worker")
@click.option("--interval", default=30.0, type=click.FloatRange(1, 3600), help="seconds between passes")
@click.option("--batch", default=100, type=click.IntRange(1, 10_000))
@click.option("--passes", default=0, type=click.IntRange(0), help="stop after N passes (0: until stopped)")
def sla_worker(interval: float, batch: int, passes: int) -> None:
    """Sweep every INTERVAL seconds until SIGTERM or SIGINT (a pass under way is finished first:
    each batch is its own transaction, so stopping never leaves half an action)."""
    stop = threading.Event()

    def request_stop(signum, _frame):
        click.echo(f"signal {signum}: stopping after this pass")
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    done = 0
    click.echo(f"sla worker started (every {interval:g} s; SIGTERM or Ctrl-C stops it)")
    try:
        while not stop.is_set():
            try:
                stats = _pass(batch)
                if stats.acted or stats.errors:
                    click.echo(_line(stats))
            except Exception:  # the database may be away for a moment: try again next pass
                log.exception("sweep pass failed")
            done += 1
            if passes and done >= passes:
                break
            stop.wait(interval)  # woken at once by the signal handler
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"sla worker stopped after {done} pass(es)")


# ------------------------------------------------------------------ calendar
@calendar_cli.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", default="cli", help="who loads it (recorded in the trail)")
def calendar_load(file: Path, by: str) -> None:
    """Validate FILE (a year's schedule: year, source, holidays, workdays) and store it for every
    app process; then recompute the due dates that were provisional."""
    from .engine.calendar import CalendarError
    from .services import calendars, sla

    svc = services()
    now = svc.clock()
    try:
        with svc.db.write() as s:
            result = calendars.load_year(s, file.read_text(encoding="utf-8"), now=now, by=by,
                                         source_name=str(file))
    except (CalendarError, UnicodeDecodeError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    moved = sla.recompute_provisional(svc.db, svc.workflow, now)
    state = "loaded" if result.changed else "unchanged (same content)"
    click.echo(f"{result.year}: {state}, sha256 {result.hash[:12]} ({result.source}); "
               f"{moved} provisional due date(s) recomputed")


@calendar_cli.command("show")
@click.argument("year", type=click.IntRange(1900, 2200))
def calendar_show(year: int) -> None:
    """Where YEAR's schedule comes from, its holidays (weekdays off) and 调休 make-up days."""
    from .services.calendars import MISSING_NOTE, describe_year, stored_year

    svc = services()
    with svc.db.read() as s:
        calendar = svc.workflow.working_calendar(s, force=True) or svc.calendar
        view = describe_year(calendar, year, stored_year(s, year), Path(current_app.config["CALENDARS"]))
    row = view.row
    origin = {
        "database": f"database (loaded {row.loaded_at:%Y-%m-%d %H:%M} UTC by {row.loaded_by}, "
                    f"sha256 {row.hash[:12]})" if row is not None else "",
        "file": f"file cn_{year}.yaml", "package": "chinesecalendar package",
        "missing": "NOT LOADED: weekends only, every due date reaching this year is provisional (暂定)",
    }[view.origin]
    click.echo(f"{year}: {origin}")
    if view.missing:
        click.echo(MISSING_NOTE)
    click.echo(f"working days: {view.working_days}")
    click.echo("holidays (weekdays off): " + (_ranges(view.holidays) or "none"))
    click.echo("make-up working days (调休): " + (", ".join(d.isoformat() for d in view.makeup) or "none"))


def _ranges(days: list[date]) -> str:
    from .services.calendars import date_ranges
    return ", ".join(a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in date_ranges(days))
