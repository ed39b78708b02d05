"""Where the time goes: one case under py-spy (a sampling profiler, so the profiled rates stay
close to the unprofiled ones), summarised as inclusive time per function.

    python -m bench.profile service_sqlite [N]    # Workflow.act on SQLite, N instances (default 1000)
    python -m bench.profile service_pg [N]        # the same on PostgreSQL, one process
    python -m bench.profile http_api [N]          # gunicorn workers while the client approves
    python -m bench.profile trail_verify          # services.trail.verify (one process) on the big data set

Writes bench/results/profile_<case>.txt (and the raw py-spy stacks to /tmp/parkflow_bench).
Requires `pip install py-spy` in the venv (a dev tool; not in requirements).
"""
from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .common import PG_BIG_URL, PG_URL, WORK_DIR, results_dir, defs_dir, fresh_pg, fresh_sqlite, setup_chain

ROOTS = {"service_sqlite": "act (bench/drivers.py", "service_pg": "act (bench/drivers.py",
         "trail_verify": "verify (workflow_app/services/trail.py", "http_api": "wsgi_app (flask/app.py"}


def summarise(raw: Path, root: str, top: int = 70) -> str:
    """Inclusive share of samples per function, counting each function once per stack."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        start = next((i for i, f in enumerate(frames) if root in f), None)
        if start is None:
            continue
        total += int(n)
        seen = set()
        for frame in frames[start:]:
            key = re.sub(r":\d+\)$", ")", frame)
            if key not in seen:
                seen.add(key)
                inclusive[key] += int(n)
    lines = [f"# inclusive share of samples under {root!r}: {total} samples", ""]
    lines += [f"{100 * v / total:6.1f}%  {k}" for k, v in inclusive.most_common(top)] if total else ["(no samples)"]
    return "\n".join(lines)


# ---------------------------------------------------------------- targets (run under py-spy)
def _drive_service(url: str, n: int, kind: str = "service") -> None:
    from .common import CHAIN
    from .drivers import DRIVERS

    people = setup_chain(url)
    driver = DRIVERS[kind](url, people, str(defs_dir()))
    items = [driver.start(k) for k in range(n)]
    t = time.perf_counter()
    for step in range(len(CHAIN)):
        items = [(i, driver.act(i, tid, step, k)) for k, (i, tid) in enumerate(items)]
    print(f"{4 * n / (time.perf_counter() - t):.0f} approvals/s under the profiler", file=sys.stderr)
    driver.close()


def target(case: str, n: int) -> None:
    if case == "service_sqlite":
        _drive_service(fresh_sqlite("profile"), n)
    elif case == "service_pg":
        _drive_service(fresh_pg(PG_URL), n)
    elif case == "trail_verify":
        from .inbox import verify_trail
        print(verify_trail(PG_BIG_URL), file=sys.stderr)
    else:
        raise SystemExit(f"unknown profile target {case!r}")


def _py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def _profile_http(n: int, out: Path) -> None:
    from . import http_load

    url = fresh_pg(PG_URL)
    people = setup_chain(url)
    orig = http_load.Server.wait_ready
    spy: dict = {}

    def wait_and_attach(self, seconds: float = 60) -> None:
        orig(self, seconds)
        spy["proc"] = subprocess.Popen([_py_spy(), "record", "-r", "500", "-f", "raw",
                                        "-o", str(out), "--subprocesses", "--pid", str(self.proc.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)

    http_load.Server.wait_ready = wait_and_attach  # type: ignore[method-assign]
    try:
        figures = http_load.run(url, people, str(defs_dir()), n, 300)
        print(f"{figures['acts_per_s']:.0f} approvals/s under the profiler", file=sys.stderr)
    finally:
        http_load.Server.wait_ready = orig  # type: ignore[method-assign]
        if "proc" in spy:
            spy["proc"].wait(timeout=60)  # py-spy ends when gunicorn (stopped by run) exits


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--target":
        target(argv[1], int(argv[2]) if len(argv) > 2 else 1000)
        return 0
    if not argv or argv[0] not in ROOTS:
        print(__doc__)
        return 2
    case, n = argv[0], (argv[1] if len(argv) > 1 else "1000")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    raw = WORK_DIR / f"pyspy_{case}.txt"
    if case == "http_api":
        _profile_http(int(n), raw)
    else:
        subprocess.run([_py_spy(), "record", "-r", "500", "-f", "raw", "-o", str(raw), "--",
                        sys.executable, "-m", "bench.profile", "--target", case, n], check=True, timeout=1800)
    summary = summarise(raw, ROOTS[case])
    path = results_dir() / f"profile_{case}.txt"
    path.write_text(summary + "\n", encoding="utf-8")
    print(summary[:4000])
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
