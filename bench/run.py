"""`python -m bench.run` — every benchmark of issue 7 in one run, side by side with the raw limit.

    python -m bench.run                  # full run: prints the table, writes bench/results/latest.json
                                         # and the figures table in bench/README.md
    python -m bench.run --quick          # smoke run (small N, small data set; README untouched)
    python -m bench.run --only sqlite    # some cases (names or groups, comma-separated); a
                                         # service case always brings its raw baseline along
    python -m bench.run --refill         # rebuild the cached 1M-task data set

Cases: raw_sqlite, service_sqlite, raw_pg_1, raw_pg_4, service_pg_1, service_pg_4, http_api,
inbox, trail_verify (one process, as `flask trail verify`), trail_verify_2 (verify(workers=2)),
statements. Groups: sqlite, pg, http, inbox, trail, all.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass

from . import report
from .common import (PG_BIG_URL, PG_URL, RESULTS_DIR, ROOT, Result, defs_dir, fresh_pg, fresh_sqlite,
                     machine_info, pg_available, results_dir, run_bounded, setup_chain)
from .throughput import WARMUP, run_clients, to_result

GROUPS = {
    "sqlite": ["raw_sqlite", "service_sqlite"],
    "pg": ["raw_pg_1", "raw_pg_4", "service_pg_1", "service_pg_4"],
    "http": ["http_api"], "inbox": ["inbox"], "trail": ["trail_verify", "trail_verify_2"],
}
ORDER = ["raw_sqlite", "service_sqlite", "raw_pg_1", "raw_pg_4", "service_pg_1", "service_pg_4",
         "http_api", "inbox", "trail_verify", "trail_verify_2", "statements"]
BASELINE = {"service_sqlite": "raw_sqlite", "service_pg_1": "raw_pg_1", "service_pg_4": "raw_pg_4",
            "http_api": "raw_sqlite"}
# The machine may be shared: the raw limit of these is measured again right after the service case
# and the baseline is the mean of the two runs around it (both kept in `extra.runs`).
BRACKETED = ("service_sqlite", "service_pg_1", "service_pg_4")
RAW_CASE = {"raw_sqlite": ("raw_sqlite", "sqlite", 1), "raw_pg_1": ("raw_pg", "pg", 1),
            "raw_pg_4": ("raw_pg", "pg", 4)}


@dataclass
class Settings:
    quick: bool
    sqlite_instances: int
    pg_instances_1: int
    pg_instances_4: int
    http_instances: int
    inbox_queries: int
    budget: float            # seconds per timed phase
    big_instances: int
    big_url: str

    @classmethod
    def make(cls, quick: bool, budget: float | None) -> "Settings":
        if quick:
            return cls(True, 200, 100, 200, 50, 50, budget or 30, 10_000, PG_BIG_URL + "_quick")
        return cls(False, 2000, 600, 1600, 400, 500, budget or 180, 200_000, PG_BIG_URL)


def select_cases(only: str | None) -> list[str]:
    if not only:
        return list(ORDER)
    chosen: set[str] = set()
    for name in (n.strip() for n in only.split(",") if n.strip()):
        if name == "all":
            chosen.update(ORDER)
        elif name in GROUPS:
            chosen.update(GROUPS[name])
        elif name in ORDER:
            chosen.add(name)
        else:
            raise SystemExit(f"unknown case {name!r}; cases: {', '.join(ORDER)}; groups: {', '.join(GROUPS)}")
    for case in list(chosen):  # a ratio needs its raw limit from the same run
        if case in BASELINE:
            chosen.add(BASELINE[case])
    return [c for c in ORDER if c in chosen]


# ---------------------------------------------------------------- the cases
def _check(url: str, expect_events: int, verify_chain: bool) -> dict:
    """After a throughput case: every action left exactly one trail row; the chains verify."""
    from sqlalchemy import text

    from workflow_app.database import Database
    from workflow_app.services.trail import verify

    db = Database(url)
    try:
        with db.read() as s:
            events = s.execute(text("SELECT count(*) FROM trail_event WHERE instance_id IS NOT NULL")).scalar()
            approved = s.execute(text("SELECT count(*) FROM process_instance WHERE status = 'approved'")).scalar()
            open_ = s.execute(text("SELECT count(*) FROM task WHERE status = 'open'")).scalar()
            out = {"trail_events": events, "expected_events": expect_events, "approved": approved,
                   "open_tasks": open_, "events_match": events == expect_events}
            if verify_chain:
                result = verify(s)
                out["trail_verified"] = result.ok
                out["trail_checked"] = result.checked
        return out
    finally:
        db.dispose()


def throughput_case(name: str, kind: str, backend: str, processes: int, instances: int,
                    st: Settings, defs: str) -> Result:
    title = {
        "raw_sqlite": "raw sqlite3 (WAL, synchronous=NORMAL)",
        "service_sqlite": "ParkFlow Workflow.act on SQLite",
        "raw_pg_1": "raw psycopg, 1 process", "raw_pg_4": "raw psycopg, 4 processes",
        "service_pg_1": "ParkFlow Workflow.act on PostgreSQL, 1 process",
        "service_pg_4": "ParkFlow Workflow.act on PostgreSQL, 4 processes",
    }[name]
    url = fresh_sqlite(name) if backend == "sqlite" else fresh_pg(PG_URL)
    people = setup_chain(url)
    figures = run_clients(kind, url, people, defs, processes, instances, st.budget)
    if "error" in figures:
        return to_result(name, title, figures)
    expect = processes * WARMUP * 5 + figures["starts"] + figures["acts"]
    check = _check(url, expect, verify_chain=kind == "service")
    note = ""
    if not check["events_match"]:
        note = f"trail rows {check['trail_events']} != actions {expect}"
    if kind == "service" and not check.get("trail_verified"):
        note += " trail does not verify!"
    return to_result(name, title, figures, {"check": check}, note.strip())


def http_case(st: Settings, defs: str) -> Result:
    from . import http_load

    title = "HTTP API approve (gunicorn -w 2, PostgreSQL)"
    reason = http_load.readiness()
    if reason:
        return Result("http_api", title, None, "actions/s", status="not measurable",
                      note=f"API not ready: {reason}")
    url = fresh_pg(PG_URL)
    people = setup_chain(url)
    figures = http_load.run(url, people, defs, st.http_instances, st.budget)
    expect = 8 * 5 + figures["starts"] + figures["acts"]
    check = _check(url, expect, verify_chain=True)
    note = []
    if figures["failures"]:
        note.append(f"{figures['failures']} failed requests, first: {figures['first_failure']}")
    if not check["events_match"]:
        note.append(f"trail rows {check['trail_events']} != actions {expect}")
    if not check.get("trail_verified"):
        note.append("trail does not verify!")
    return Result("http_api", title, figures["acts_per_s"], "actions/s",
                  status="truncated" if figures["truncated"] else "ok", count=figures["acts"],
                  seconds=figures["act_seconds"], extra={**figures, "check": check}, note="; ".join(note))


def inbox_case(st: Settings, refill: bool) -> list[Result]:
    from . import bigdata, inbox

    marker = bigdata.ensure(st.big_instances, refill=refill, url=st.big_url, log=_log)
    figures = run_bounded(inbox.measure, (st.big_url, st.inbox_queries, st.budget), st.budget * 3 + 120)
    out = []
    for key, title in (("my_tasks", "inbox: my open tasks (queries.my_tasks), p95"),
                       ("queue_tasks", "inbox: department queue (queries.queue_tasks), p95")):
        f = figures[key]
        out.append(Result(f"inbox_{key}", title, f["p95_ms"], "ms",
                          status="truncated" if f["truncated"] else "ok", count=f["queries"],
                          extra={**f, "data": marker}, note=_plan_note(f["plan"])))
    return out


def _plan_note(plan: dict) -> str:
    parts = []
    for label, p in plan.items():
        idx = ", ".join(i for i in p["indexes"] if i.startswith("ix_task")) or "no task index"
        seq = f"; seq scan on {', '.join(p['seq_scans'])}" if p["seq_scans"] else ""
        parts.append(f"{label}: {idx}{seq}, {p['execution_ms']} ms")
    return "EXPLAIN " + "; ".join(parts)


def trail_case(st: Settings, refill: bool, workers: int) -> Result:
    from . import bigdata, inbox

    marker = bigdata.ensure(st.big_instances, refill=refill, url=st.big_url, log=_log)
    figures = run_bounded(inbox.verify_trail, (st.big_url, workers), max(st.budget * 5, 900))
    name = "trail_verify" if workers == 1 else f"trail_verify_{workers}"
    how = ("one process, as `flask trail verify`" if workers == 1
           else f"verify(workers={workers}): instance-id ranges in {workers} child processes")
    return Result(name, f"services.trail.verify over {marker['events']:,} events, {how}",
                  figures["events_per_s"], "events/s", count=figures["checked"], seconds=figures["seconds"],
                  status="ok" if figures["ok"] else "error", extra={**figures, "data": marker},
                  note="" if figures["ok"] else f"chain broken: {figures['broken']}")


def statements_case(defs: str, with_pg: bool) -> Result:
    from . import statements

    out = {}
    for backend in ("sqlite", "postgresql") if with_pg else ("sqlite",):
        url = fresh_sqlite("statements") if backend == "sqlite" else fresh_pg(PG_URL)
        counted = statements.count(url, setup_chain(url), defs)
        (results_dir() / f"statements_{backend}.txt").write_text(statements.render(counted), encoding="utf-8")
        out[backend] = {k: counted[k] for k in ("start_round_trips", "act_round_trips",
                                                "raw_start_round_trips", "raw_act_round_trips")}
    pg = out.get("postgresql", out["sqlite"])
    note = f"raw: {pg['raw_act_round_trips']}"
    if with_pg:
        from .http_load import readiness

        if readiness() is None:
            url = fresh_pg(PG_URL)
            counted = statements.count_http(url, setup_chain(url), defs)
            (results_dir() / "statements_http.txt").write_text(statements.render_http(counted), encoding="utf-8")
            out["http"] = {"act_round_trips": counted["act_round_trips"]}
            note += f"; one HTTP approve: {counted['act_round_trips']}"
    where = results_dir().relative_to(ROOT)
    backend = "PostgreSQL" if "postgresql" in out else "SQLite"
    return Result("statements", f"round trips per approval on {backend} (service layer)", pg["act_round_trips"],
                  "statements", extra=out, note=note + f"; lists in {where}/statements_*.txt")


def _rebracket(results: list[Result], baseline: str, st: Settings, defs: str) -> None:
    raw = next((r for r in results if r.name == baseline and r.status == "ok"), None)
    if raw is None:
        return
    kind, backend, procs = RAW_CASE[baseline]
    instances = st.sqlite_instances if backend == "sqlite" else (st.pg_instances_1 if procs == 1 else st.pg_instances_4)
    again = throughput_case(baseline, kind, backend, procs, instances, st, defs)
    if again.status != "ok" or again.value is None:
        raw.note = (raw.note + f" second run failed: {again.note}").strip()
        return
    runs = raw.extra.setdefault("runs", [raw.value])
    runs.append(again.value)
    raw.value = sum(runs) / len(runs)
    raw.count += again.count
    raw.seconds += again.seconds
    raw.note = "mean of the runs around the service case(s): " + ", ".join(f"{v:,.0f}" for v in runs)
    _log(f"  {baseline} again: {again.value:,.0f} actions/s -> baseline {raw.value:,.0f}")


# ---------------------------------------------------------------- main
def _log(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: small N and a small data set")
    parser.add_argument("--only", help="cases or groups, comma-separated")
    parser.add_argument("--refill", action="store_true", help="rebuild the cached 1M-task data set")
    parser.add_argument("--budget", type=float, help="seconds per timed phase (default 180, quick 30)")
    parser.add_argument("--readme", action="store_true",
                        help="update bench/README.md even for a --quick or --only run")
    args = parser.parse_args(argv)
    st = Settings.make(args.quick, args.budget)
    cases = select_cases(args.only)
    mode = "quick" if st.quick else ("full" if set(ORDER) <= set(cases) else "partial")
    if mode != "full":
        os.environ["BENCH_RESULTS_DIR"] = str(RESULTS_DIR / mode)
    defs = str(defs_dir())
    pg_problem = pg_available(PG_URL)
    info = machine_info(PG_URL if pg_problem is None else None)
    _log(f"ParkFlow bench — {info['date']}, {info['nproc']} × {info['cpu']}, Python {info['python']}, "
         f"SQLite {info['sqlite']}, PostgreSQL {info['postgresql']}; cases: {', '.join(cases)}")

    results: list[Result] = []
    t_run = time.monotonic()
    for case in cases:
        t = time.monotonic()
        load_before = os.getloadavg()[0]
        _log(f"- {case} ...")
        try:
            if case.startswith(("raw_pg", "service_pg", "http", "inbox", "trail")) and pg_problem:
                results.append(Result(case, case, None, "", status="skipped",
                                      note=f"PostgreSQL unavailable: {pg_problem}"))
            elif case == "raw_sqlite":
                results.append(throughput_case(case, "raw_sqlite", "sqlite", 1, st.sqlite_instances, st, defs))
            elif case == "service_sqlite":
                results.append(throughput_case(case, "service", "sqlite", 1, st.sqlite_instances, st, defs))
            elif case in ("raw_pg_1", "raw_pg_4", "service_pg_1", "service_pg_4"):
                procs = int(case[-1])
                results.append(throughput_case(case, "raw_pg" if case.startswith("raw") else case.split("_")[0], "pg",
                                               procs, st.pg_instances_1 if procs == 1 else st.pg_instances_4,
                                               st, defs))
            elif case == "http_api":
                results.append(http_case(st, defs))
            elif case == "inbox":
                results.extend(inbox_case(st, args.refill))
            elif case == "trail_verify":
                results.append(trail_case(st, args.refill, 1))
            elif case == "trail_verify_2":
                results.append(trail_case(st, args.refill, 2))
            elif case == "statements":
                results.append(statements_case(defs, pg_problem is None))
        except Exception as exc:  # noqa: BLE001 - one broken case must not hide the others
            results.append(Result(case, case, None, "", status="error",
                                  note=f"{type(exc).__name__}: {exc}".strip()[:500],
                                  extra={"traceback": traceback.format_exc(limit=6)}))
        last = results[-1]
        last.extra["loadavg_before"] = load_before
        last.extra["loadavg_after"] = os.getloadavg()[0]
        _log(f"  {last.status}: {report.fmt(last.value, last.unit)} {last.unit} "
             f"({time.monotonic() - t:.0f} s, load {load_before:.1f} -> {last.extra['loadavg_after']:.1f})"
             f"{' — ' + last.note[:200] if last.note else ''}")
        if case in BRACKETED and last.status == "ok":
            _rebracket(results, BASELINE[case], st, defs)

    loads = [v for r in results for k, v in r.extra.items() if k.startswith("loadavg_")]
    info["loadavg_range"] = [min(loads), max(loads)] if loads else None
    rows = report.evaluate(results)
    document = {"mode": mode, "machine": info, "settings": st.__dict__, "seconds": time.monotonic() - t_run,
                "results": [r.as_dict() for r in results], "table": rows}
    out = results_dir() / "latest.json"
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print()
    print(report.table_text(rows))
    print(f"\nwrote {out.relative_to(ROOT)}", end="")
    if mode == "full" or args.readme:
        report.update_readme(rows, info, st, mode)
        print(" and the figures in bench/README.md")
    else:
        print(f" (bench/README.md untouched: {mode} run; add --readme to update it)")
    return 0 if all(r.status in ("ok", "truncated", "not measurable", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
