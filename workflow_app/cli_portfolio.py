"""`flask` commands for the park portfolio, monitoring and matching. Thin shells over the services:

    flask portfolio load [FILE]          upsert the portfolio (default: the shipped demo data)
    flask portfolio export OUT.xlsx      the portfolio as Excel (parks, units, firms, indicators, warnings)
    flask portfolio homogeneity CODE     同质化 check of a park (or --location/--industry)
    flask monitor rules [FILE]           check the warning rules (FILE:LINE: KEY: message)
    flask monitor evaluate PERIOD        grade every park for 2026Q3 / 2026-10, open rectification
    flask match --industry 新材料 --area 1500 [--floors 仅限首层 --load 30 --height 8 --budget 50]

`register(app)` adds them; cli.register calls it.
"""
from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from .container import services
from .engine.errors import DefinitionError, NotFound

portfolio_cli = AppGroup("portfolio", help="The park portfolio: load, export, homogeneity check.")
monitor_cli = AppGroup("monitor", help="Park asset monitoring and graded warnings.")


def register(app: Flask) -> None:
    for command in (portfolio_cli, monitor_cli, match_cmd):
        app.cli.add_command(command)


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


# ------------------------------------------------------------------ portfolio
@portfolio_cli.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
def portfolio_load(file: str | None) -> None:
    """Validate FILE (YAML, default: the demo portfolio) and upsert it; idempotent."""
    from .domain.portfolio import DEFAULT_DATA, load_file
    from .domain.portfolio_store import load_portfolio

    if file is None and not current_app.config.get("DEMO_ALLOWED", False):
        _fail("refused: the shipped file is the illustrative demo portfolio; give a FILE")
    svc = services()
    try:
        data = load_file(file or DEFAULT_DATA, org=svc.store.organisation)
    except DefinitionError as exc:
        _fail(str(exc))
    with svc.db.write() as s:
        svc.store.sync_departments(s)
        stats = load_portfolio(s, data)
    created = ", ".join(f"{k} {v}" for k, v in sorted(stats.created.items())) or "nothing"
    updated = ", ".join(f"{k} {v}" for k, v in sorted(stats.updated.items())) or "nothing"
    click.echo(f"{len(data.parks)} parks loaded; created: {created}; updated: {updated}")


@portfolio_cli.command("export")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
def portfolio_export(out: str) -> None:
    """Write the portfolio to OUT (.xlsx): parks, units, enterprises, indicators, warnings."""
    from .domain.portfolio_store import export_xlsx
    from .services.matching import industry_labels

    labels_zh = industry_labels()
    with services().db.read() as s:
        content = export_xlsx(s, lambda code: labels_zh.get(code, code))
    Path(out).write_bytes(content)
    click.echo(f"wrote {out} ({len(content)} bytes)")


@portfolio_cli.command("homogeneity")
@click.argument("code", required=False)
@click.option("--location", help="街道/镇 of a planned park not yet in the portfolio")
@click.option("--industry", help="lead industry (code or 中文, e.g. 新材料)")
def portfolio_homogeneity(code: str | None, location: str | None, industry: str | None) -> None:
    """Flag parks in the same place with the same lead industry (严控同质化项目重复建设)."""
    from .services.matching import check_homogeneity, homogeneity_for_park, industry_labels

    if not code and not (location and industry):
        _fail("give a park CODE, or --location and --industry")
    with services().db.read() as s:
        try:
            result = (homogeneity_for_park(s, code) if code
                      else check_homogeneity(s, location, industry))
        except (NotFound, ValueError) as exc:
            _fail(f"error: {exc}")
    labels = industry_labels()
    click.echo(f"{result.location} / {labels.get(result.lead_industry, result.lead_industry)}: "
               f"全区厂房面积占比 {result.district_share * 100:.1f}%")
    if not result.flagged:
        click.echo("no duplicate park in this location"
                   + (" (an industry no park leads yet)" if result.leads_no_park else ""))
        return
    click.echo(f"FLAG: {len(result.duplicates)} park(s) with the same lead industry here:")
    for line in result.evidence(labels):
        click.echo(f"  - {line}")


# ------------------------------------------------------------------ monitor
@monitor_cli.command("rules")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def monitor_rules(file: str | None) -> None:
    """Check the warning rules (default: rules/warning_rules.yaml beside the definitions); print
    FILE:LINE: KEY: message per problem and exit 1 if any, else list the rules."""
    from .domain.monitoring import RULES_FILE, load_rules

    path = Path(file) if file else Path(current_app.config["PROCESS_DEFS"]) / RULES_FILE
    try:
        rules = load_rules(path)
    except FileNotFoundError:
        _fail(f"{path}:1: <file>: file not found")
    except DefinitionError as exc:
        click.echo(str(exc))
        _fail(f"{len(exc.problems)} problem(s)")
    for r in rules.rules:
        click.echo(f"{r.grade.label_zh}  {r.id:<22} {r.condition.source}")
    click.echo(f"{len(rules.rules)} rule(s) valid ({rules.content_hash[:12]})")


@monitor_cli.command("evaluate")
@click.argument("period")
@click.option("--as", "username", help="user running the evaluation (recorded in the trail)")
def monitor_evaluate(period: str, username: str | None) -> None:
    """Grade every park for PERIOD (2026Q3 or 2026-10); a red park gets a rectification case."""
    from .models import User
    from .services.monitoring import evaluate_period

    svc = services()
    try:
        with svc.db.write() as s:
            user_id = None
            if username:
                user_id = s.scalar(select(User.id).where(User.username == username))
                if user_id is None:
                    _fail(f"no user {username!r}")
            result = evaluate_period(s, svc.workflow, period, svc.clock(), user_id)
    except (ValueError, NotFound) as exc:  # DefinitionError is a ValueError
        _fail(f"error: {exc}")
    if not result.parks:
        click.echo(f"{period}: no park has indicators for this period")
        return
    for p in result.parks:
        extra = ""
        if p.rectification_instance_id:
            extra = f"  rectification #{p.rectification_instance_id}"
            extra += " opened" if p.rectification_opened else ""
        elif p.note:
            extra = f"  ({p.note})"
        click.echo(f"{p.park}  {p.grade or '-':<7} {p.action}{extra}")
    for park, old_period, reason in result.closed:
        click.echo(f"closed: {park} {old_period} ({reason})")
    counts = result.by_grade()
    click.echo(f"{period}: red {counts['red']}, orange {counts['orange']}, yellow {counts['yellow']}"
               f" (rules {result.rules_hash[:12]})")


# ------------------------------------------------------------------ match
@click.command("match")
@with_appcontext
@click.option("--industry", required=True, help="code or 中文 (智能制造, 新材料, ...)")
@click.option("--area", required=True, type=Decimal, help="floor area needed, m²")
@click.option("--floors", default="不限", show_default=True,
              help="仅限首层 | 首层或二层 | 二层及以上 | 不限 (or ground_only, ...)")
@click.option("--load", "load", type=Decimal, help="floor load needed, kN/m²")
@click.option("--height", type=Decimal, help="ceiling height needed, m")
@click.option("--budget", type=Decimal, help="rent budget, 万元/年")
@click.option("--limit", default=10, show_default=True, help="how many units to print")
@click.option("--rejected", is_flag=True, help="also list the units that do not qualify")
def match_cmd(industry: str, area: Decimal, floors: str, load: Decimal | None,
              height: Decimal | None, budget: Decimal | None, limit: int, rejected: bool) -> None:
    """Rank the vacant units of every park for an enterprise (产业链精准匹配)."""
    from .domain.matching import Floors, Needs
    from .services.matching import industry_code, match_units

    try:
        needs = Needs(industry_code(industry), area, Floors.from_label(floors), load, height, budget)
    except ValueError as exc:
        _fail(f"error: {exc}")
    with services().db.read() as s:
        try:
            ranking = match_units(s, needs)
        except ValueError as exc:
            _fail(f"error: {exc}")
    click.echo(f"{len(ranking.matches)} unit(s) qualify, {len(ranking.rejected)} do not")
    for i, m in enumerate(ranking.matches[:limit], start=1):
        c = m.candidate
        click.echo(f"{i:>2}. {m.score:>3}  {c.park} {c.park_name} {c.building} {c.unit} "
                   f"{c.floor}F {c.area_m2:f} m²")
        for reason in m.reasons:
            click.echo(f"          {reason}")
    if rejected:
        for r in ranking.rejected:
            c = r.candidate
            click.echo(f"  x  {c.park} {c.building} {c.unit}: {'；'.join(r.reasons)}")
