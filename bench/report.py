"""Figures -> ratios against the raw limit of the same run, targets, the printed table, and the
figures section of bench/README.md (between the `figures:begin` / `figures:end` markers)."""
from __future__ import annotations

import re

from .common import BENCH_DIR, Result

# case -> (baseline case or None, comparison, target). Ratios are figure / baseline figure.
TARGETS = {
    "service_sqlite": ("raw_sqlite", ">=", 0.30),
    "service_pg_4": ("raw_pg_4", ">=", 0.60),
    "http_api": ("raw_sqlite", ">=", 0.05),
    "inbox_my_tasks": (None, "<=", 30.0),
    "inbox_queue_tasks": (None, "<=", 30.0),
    "trail_verify": (None, ">=", 100_000.0),
    "trail_verify_2": (None, ">=", 100_000.0),
}
INFO_BASELINE = {"raw_sqlite": "raw_sqlite", "raw_pg_1": "raw_pg_1", "raw_pg_4": "raw_pg_4",
                 "service_pg_1": "raw_pg_1"}


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:.1f}"
    if unit == "statements":
        return f"{value:.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def evaluate(results: list[Result]) -> list[dict]:
    by_name = {r.name: r for r in results}
    rows = []
    for r in results:
        baseline, op, target = TARGETS.get(r.name, (INFO_BASELINE.get(r.name), None, None))
        base = by_name.get(baseline) if baseline else None
        ratio = (r.value / base.value) if (base and base.value and r.value is not None) else None
        compared = ratio if baseline else r.value
        met = None
        if op and compared is not None and r.status in ("ok", "truncated"):
            met = compared >= target if op == ">=" else compared <= target
        detail = ""
        e = r.extra
        if "act_p50_ms" in e:
            detail = f"p50 {e['act_p50_ms']:.2f} ms, p99 {e['act_p99_ms']:.2f} ms"
            if e.get("worker_cpu_us_per_act") is not None:
                detail += (f"; CPU/approval: gunicorn worker {e['worker_cpu_us_per_act']:,.0f} µs, "
                           f"PostgreSQL {e['server_cpu_us_per_act']:,.0f} µs, load client "
                           f"{e['load_client_cpu_us_per_act']:,.0f} µs")
            if e.get("client_cpu_us_per_act") is not None:
                detail += f"; CPU/approval: client {e['client_cpu_us_per_act']:,.0f} µs"
                if e.get("server_cpu_us_per_act") is not None:
                    detail += f", server {e['server_cpu_us_per_act']:,.0f} µs"
            if e.get("starts_per_s"):
                detail += f"; starts {e['starts_per_s']:,.0f}/s"
        elif "p50_ms" in e:
            detail = f"p50 {e['p50_ms']:.1f} / p99 {e['p99_ms']:.1f} ms over {e['queries']} queries"
        elif r.name.startswith("trail_verify") and r.seconds:
            detail = f"{r.count:,} events in {r.seconds:.1f} s"
            if e.get("client_cpu_us_per_event") is not None:
                detail += (f"; CPU/event: verifying processes {e['client_cpu_us_per_event']:.1f} µs, "
                           f"PostgreSQL {e['server_cpu_us_per_event']:.1f} µs")
        rows.append({"name": r.name, "title": r.title, "value": r.value, "unit": r.unit, "status": r.status,
                     "baseline": baseline if base else None, "ratio": ratio,
                     "target": f"{op} {target:g}{'' if baseline else ' ' + r.unit}" if op else "",
                     "met": met, "detail": detail, "note": r.note})
    return rows


def _met(row: dict) -> str:
    if row["met"] is None:
        return "" if not row["target"] else ("n/a" if row["status"] not in ("ok", "truncated") else "")
    return "yes" if row["met"] else "**NO**"


def table_text(rows: list[dict]) -> str:
    head = f"{'case':<20} {'figure':>12} {'unit':<10} {'ratio':>7} {'target':>14} {'met':>5}  detail"
    lines = [head, "-" * len(head)]
    for row in rows:
        ratio = f"{row['ratio']:.3f}" if row["ratio"] is not None else ""
        value = fmt(row["value"], row["unit"]) if row["status"] in ("ok", "truncated") else row["status"]
        lines.append(f"{row['name']:<20} {value:>12} {row['unit']:<10} {ratio:>7} {row['target']:>14} "
                     f"{_met(row).replace('*', ''):>5}  {row['detail']}")
        if row["note"]:
            lines.append(f"{'':<20} note: {row['note'][:300]}")
    return "\n".join(lines)


def table_markdown(rows: list[dict]) -> str:
    lines = ["| case | what | figure | ratio to raw (same run) | target | met | detail |",
             "|---|---|---:|---:|---|---|---|"]
    for row in rows:
        value = f"{fmt(row['value'], row['unit'])} {row['unit']}" if row["status"] in ("ok", "truncated") \
            else row["status"]
        if row["status"] == "truncated":
            value += " (truncated)"
        ratio = f"{row['ratio']:.3f} × {row['baseline']}" if row["ratio"] is not None else ""
        note = f" — {row['note']}" if row["note"] else ""
        lines.append(f"| `{row['name']}` | {row['title']} | {value} | {ratio} | {row['target']} | "
                     f"{_met(row)} | {row['detail']}{note} |".replace("\n", " "))
    return "\n".join(lines)


def machine_markdown(info: dict, settings, mode: str) -> str:
    pg = info.get("pg_settings") or {}
    pg_line = ", ".join(f"{k}={v}" for k, v in pg.items())
    return (f"Run: **{info['date']}**, mode `{mode}`, commit `{info.get('commit')}` (plus uncommitted work). "
            f"Machine: `nproc` = {info['nproc']}, CPU {info['cpu']}, kernel {info.get('kernel')}; "
            f"Python {info['python']}, SQLite {info['sqlite']}, PostgreSQL {info['postgresql']} "
            f"({pg_line}), SQLAlchemy {info.get('sqlalchemy')}, psycopg {info.get('psycopg')}. "
            + (f"1-minute load average during the run: {info['loadavg_range'][0]:.1f}–{info['loadavg_range'][1]:.1f} "
               f"(the machine is shared; other work inflates the slower, CPU-bound cases most). "
               if info.get("loadavg_range") else "") +
            f"Sizes: SQLite {settings.sqlite_instances} instances, PostgreSQL {settings.pg_instances_1} (1 process) "
            f"/ {settings.pg_instances_4} (4 processes), HTTP {settings.http_instances}, inbox "
            f"{settings.inbox_queries} queries per kind on {settings.big_instances:,} instances.")


def update_readme(rows: list[dict], info: dict, settings, mode: str) -> None:
    path = BENCH_DIR / "README.md"
    text = path.read_text(encoding="utf-8")
    block = ("<!-- figures:begin (written by `python -m bench.run`; edit outside the markers) -->\n"
             + machine_markdown(info, settings, mode) + "\n\n" + table_markdown(rows) + "\n<!-- figures:end -->")
    new, n = re.subn(r"<!-- figures:begin.*?<!-- figures:end -->", lambda _m: block, text, flags=re.S)
    if n != 1:
        raise RuntimeError("bench/README.md lacks the figures markers")
    path.write_text(new, encoding="utf-8")
