"""Throughput of the canonical workload: N instances started, then driven breadth-first (every
instance through review A, then every instance through review B, ...), in 1..P client processes.

Each client process (multiprocessing, spawn: its own interpreter, engine and connection) owns a
slice of the instances. Clients warm up (a few complete instances, not counted), meet at a
barrier, start their instances, meet again, then decide. Rates are total operations over the
wall time between the barrier and the last client finishing. Every loop is bounded by its count
and by a time budget; a phase cut short by the budget is reported as `truncated`.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import time
import traceback
from dataclasses import asdict

from .common import CHAIN, Budget, People, Result, percentile, rate

WARMUP = 5
_TICK = os.sysconf("SC_CLK_TCK")


def _server_cpu(pid: int | None) -> float | None:
    """CPU seconds used so far by a PostgreSQL backend (same machine), from /proc."""
    if pid is None:
        return None
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return None


def _worker(kind: str, url: str, people: dict, defs: str, index: int, n: int, budget_s: float,
            barrier, out) -> None:
    from .drivers import DRIVERS

    report = {"index": index, "starts": 0, "acts": 0, "truncated": False, "error": None}
    driver = None
    try:
        driver = DRIVERS[kind](url, People(**people), defs)
        for w in range(WARMUP):  # compile statements, specs, machines, calendar tables
            iid, tid = driver.start(-1 - w)
            for step in range(len(CHAIN)):
                tid = driver.act(iid, tid, step, w)
        barrier.wait(timeout=budget_s + 120)
        budget = Budget(budget_s)
        report["start_t0"] = time.monotonic()
        open_tasks: list[tuple[int, int]] = []
        for k in range(n):
            if budget.expired():
                report["truncated"] = True
                break
            open_tasks.append(driver.start(index * 1_000_000 + k))
        report["start_t1"] = time.monotonic()
        report["starts"] = len(open_tasks)
        barrier.wait(timeout=budget_s + 120)
        budget = Budget(budget_s)
        latencies: list[float] = []
        backend = driver.backend_pid()
        server0, cpu0 = _server_cpu(backend), time.process_time()
        report["act_t0"] = time.monotonic()
        for step in range(len(CHAIN)):  # breadth-first: one step across all instances
            nxt = []
            for k, (iid, tid) in enumerate(open_tasks):
                if budget.expired():
                    report["truncated"] = True
                    break
                t = time.perf_counter()
                new = driver.act(iid, tid, step, k)
                latencies.append(time.perf_counter() - t)
                nxt.append((iid, new))
            if report["truncated"]:
                break
            open_tasks = nxt
        report["act_t1"] = time.monotonic()
        report["client_cpu"] = time.process_time() - cpu0
        server1 = _server_cpu(backend)
        report["server_cpu"] = server1 - server0 if server0 is not None and server1 is not None else None
        report["acts"] = len(latencies)
        report["latencies"] = latencies
    except Exception:  # noqa: BLE001 - reported in the results, the other cases go on
        report["error"] = traceback.format_exc(limit=8)
        barrier.abort()
    finally:
        if driver is not None:
            driver.close()
        out.put(report)


def run_clients(kind: str, url: str, people: People, defs: str, processes: int, instances: int,
                budget_s: float) -> dict:
    """Run `processes` clients over `instances` instances (split evenly); aggregate figures."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    share = [instances // processes + (1 if i < instances % processes else 0) for i in range(processes)]
    procs = [ctx.Process(target=_worker, args=(kind, url, asdict(people), defs, i, share[i], budget_s,
                                               barrier, out), daemon=True)
             for i in range(processes)]
    for p in procs:
        p.start()
    reports, hard_limit = [], time.monotonic() + 3 * budget_s + 180
    while len(reports) < processes and time.monotonic() < hard_limit:
        try:
            reports.append(out.get(timeout=5))
        except queue_mod.Empty:
            if not any(p.is_alive() for p in procs):
                break
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():  # only our own children, by their handle
            p.terminate()
            p.join(timeout=5)
    errors = [r["error"] for r in reports if r.get("error")]
    if errors or len(reports) < processes:
        return {"error": errors[0] if errors else "a client did not report (killed or hung)"}
    lat = sorted(x for r in reports for x in r["latencies"])
    starts, acts = sum(r["starts"] for r in reports), sum(r["acts"] for r in reports)
    start_s = max(r["start_t1"] for r in reports) - min(r["start_t0"] for r in reports)
    act_s = max(r["act_t1"] for r in reports) - min(r["act_t0"] for r in reports)
    client_cpu = sum(r["client_cpu"] for r in reports)
    server_cpu = None if any(r["server_cpu"] is None for r in reports) else sum(r["server_cpu"] for r in reports)
    return {"client_cpu_us_per_act": client_cpu / acts * 1e6 if acts else None,
            "server_cpu_us_per_act": server_cpu / acts * 1e6 if acts and server_cpu is not None else None,
            "starts": starts, "start_seconds": start_s, "starts_per_s": rate(starts, start_s),
            "acts": acts, "act_seconds": act_s, "acts_per_s": rate(acts, act_s),
            "truncated": any(r["truncated"] for r in reports),
            "act_p50_ms": percentile(lat, 50) * 1000, "act_p99_ms": percentile(lat, 99) * 1000,
            "processes": processes, "instances": instances}


def to_result(name: str, title: str, figures: dict, extra: dict | None = None, note: str = "") -> Result:
    if "error" in figures:
        return Result(name, title, None, "actions/s", status="error", note=figures["error"])
    return Result(name, title, figures["acts_per_s"], "actions/s",
                  status="truncated" if figures["truncated"] else "ok", count=figures["acts"],
                  seconds=figures["act_seconds"], extra={**figures, **(extra or {})}, note=note)
