"""`python -m bench.instructions` — CPU instructions per approval, counted by valgrind (callgrind).

Wall-clock rates on a shared 2-core machine move with whatever else runs; the number of
instructions a process executes does not (to within a fraction of a per cent). This harness
counts them for the canonical workload's approvals on SQLite, for the raw `sqlite3` limit and for
ParkFlow's service layer, with the same drivers as `bench.run` (`bench/drivers.py`):

    python -m bench.instructions               # raw_sqlite and service, 10 instances each
    python -m bench.instructions -n 40 service # one driver, more instances
    python -m bench.instructions --keep /tmp/cg # keep the callgrind files (callgrind_annotate them)

How: the database is prepared outside valgrind (Alembic, the bench definitions and people), then
each driver runs twice under `valgrind --tool=callgrind` on a copy of it — both runs import,
connect, warm up on 3 complete instances and start N instances; the second run also drives the
N instances through their 4 approvals. The difference of the two totals divided by 4·N is the
cost of one approval (start-up, warm-up and exit cancel out). Everything the process executes
counts, SQLite's C code included; the kernel's work (fsync, file I/O) does not.
`PYTHONHASHSEED=0` keeps the runs repeatable. Needs valgrind (`apt-get install valgrind`); a run
of the service takes about a minute.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import CHAIN, ROOT, People, defs_dir, fresh_sqlite, setup_chain, sqlite_path

WARMUP = 3
KINDS = ("raw_sqlite", "service")


def _child(kind: str, url: str, people: People, defs: str, n: int, approve: bool) -> None:
    from .drivers import DRIVERS

    driver = DRIVERS[kind](url, people, defs)
    try:
        for w in range(WARMUP):  # compile statements, specs, machines, calendar tables
            iid, tid = driver.start(-1 - w)
            for step in range(len(CHAIN)):
                tid = driver.act(iid, tid, step, w)
        open_tasks = [driver.start(k) for k in range(n)]
        if approve:
            for step in range(len(CHAIN)):
                open_tasks = [(iid, driver.act(iid, tid, step, k)) for k, (iid, tid) in enumerate(open_tasks)]
    finally:
        driver.close()


def _count(kind: str, db: Path, people: People, defs: str, n: int, approve: bool, work: Path) -> int:
    copy = work / f"{kind}_{int(approve)}.db"
    for suffix in ("-wal", "-shm"):
        Path(str(copy) + suffix).unlink(missing_ok=True)
    shutil.copy(db, copy)
    out = work / f"callgrind_{kind}_{int(approve)}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
           sys.executable, "-m", "bench.instructions", "--child", kind, f"sqlite:///{copy}", defs,
           str(n), "1" if approve else "0", str(people.submitter), str(people.definition_id),
           ",".join(":".join(map(str, r)) for r in people.reviewers)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{kind}: valgrind failed\n{proc.stderr[-3000:]}")
    match = re.search(r"^summary:\s*(\d+)", out.read_text(), re.M) or re.search(
        r"^totals:\s*(\d+)", out.read_text(), re.M)
    if not match:
        raise SystemExit(f"{kind}: no instruction total in {out}")
    return int(match.group(1))


def measure(kinds: tuple[str, ...], n: int, keep: Path | None = None) -> dict[str, dict]:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found (apt-get install valgrind)")
    url = fresh_sqlite("instructions")
    people, defs = setup_chain(url), str(defs_dir())
    figures = {}
    with tempfile.TemporaryDirectory(prefix="parkflow_instr_") as tmp:
        for kind in kinds:
            base = _count(kind, Path(sqlite_path(url)), people, defs, n, False, Path(tmp))
            full = _count(kind, Path(sqlite_path(url)), people, defs, n, True, Path(tmp))
            figures[kind] = {"per_approval": (full - base) / (n * len(CHAIN)), "approvals": n * len(CHAIN),
                             "total_without": base, "total_with": full}
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for out in Path(tmp).glob("callgrind_*.out"):
                shutil.copy(out, keep / out.name)
    return figures


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, url, defs, n, approve, submitter, definition_id, reviewers = argv[1:9]
        people = People(int(submitter), [[int(u) for u in r.split(":")] for r in reviewers.split(",")],
                        int(definition_id))
        _child(kind, url, people, defs, int(n), approve == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kinds", nargs="*", help=f"drivers (default: {' '.join(KINDS)})")
    parser.add_argument("-n", type=int, default=10, help="instances per run (4 approvals each)")
    parser.add_argument("--keep", type=Path, help="copy the callgrind output files to this directory")
    args = parser.parse_args(argv)
    if any(k not in KINDS for k in args.kinds):
        parser.error(f"drivers are {', '.join(KINDS)}")
    args.kinds = args.kinds or list(KINDS)
    figures = measure(tuple(args.kinds), args.n, args.keep)
    raw = figures.get("raw_sqlite", {}).get("per_approval")
    for kind, f in figures.items():
        ratio = f" = {f['per_approval'] / raw:.1f} × raw_sqlite" if raw and kind != "raw_sqlite" else ""
        print(f"{kind:12s} {f['per_approval']:>14,.0f} instructions per approval "
              f"({f['approvals']} approvals){ratio}")


if __name__ == "__main__":
    main()
