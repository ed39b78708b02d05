"""What every benchmark case shares: paths, databases, the workload's people and definition,
time budgets, results and the description of the machine.

Databases are the benchmark's own: SQLite files under /tmp/parkflow_bench and the PostgreSQL
databases `parkflow_bench` (throughput, rebuilt for every case) and `parkflow_bench_big` (the
1M-task inbox and 1M-event trail, filled once and kept). The shared `test` database is refused.
"""
from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"


def results_dir() -> Path:
    """Where this run's files go: bench/results for a full run, bench/results/<mode>/ for quick
    and partial runs (BENCH_RESULTS_DIR, inherited by the spawned clients), so a smoke run never
    overwrites the figures and plans the README refers to."""
    path = Path(os.environ.get("BENCH_RESULTS_DIR", RESULTS_DIR))
    path.mkdir(parents=True, exist_ok=True)
    return path
WORK_DIR = Path(os.environ.get("BENCH_WORK_DIR", "/tmp/parkflow_bench"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/parkflow_bench")
PG_BIG_URL = os.environ.get("BENCH_PG_BIG_URL", "postgresql://postgres@127.0.0.1:5432/parkflow_bench_big")
FORBIDDEN_DATABASES = ("test", "postgres", "template0", "template1")

PROCESS_KEY = "bench_chain"
# (step, department, role) of the four decisions after submission, in order.
CHAIN = (("review_a", "invest_promo", "reviewer"), ("review_b", "econ_it", "reviewer"),
         ("review_c", "dev_reform", "reviewer"), ("final", "sasac", "head"))
SUBMIT_DEPARTMENT = "zhentou"
MEMBERS_PER_STEP = 5
FORM = {"project_name": "镇海新材料中试基地", "investment_wan": "1200"}


# ---------------------------------------------------------------- time and results
class Budget:
    """A wall-clock limit: every benchmark loop is bounded in count AND by one of these."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline


@dataclass
class Result:
    name: str                   # e.g. "service_sqlite"
    title: str                  # one line for the table
    value: float | None         # the figure (rate, or latency in ms)
    unit: str                   # "actions/s", "ms", "events/s"
    status: str = "ok"          # ok | truncated | not measurable | error | skipped
    count: int = 0              # operations measured
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def run_bounded(target, args: tuple, timeout: float):
    """Run `target(*args)` in a fresh (spawned) process and return its result; a run that
    exceeds `timeout` seconds is terminated (our own child, by its handle) and raises TimeoutError."""
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_call, args=(out, target, args), daemon=False)  # may start its own workers
    proc.start()
    try:
        ok, value = out.get(timeout=timeout)
    except queue_mod.Empty:
        proc.terminate()
        proc.join(timeout=10)
        raise TimeoutError(f"{getattr(target, '__name__', target)} exceeded {timeout:.0f} s") from None
    proc.join(timeout=10)
    if not ok:
        raise RuntimeError(value)
    return value


def _call(out, target, args) -> None:
    import traceback

    try:
        out.put((True, target(*args)))
    except Exception:  # noqa: BLE001 - handed to the parent as text
        out.put((False, traceback.format_exc(limit=8)))


def rate(count: int, seconds: float) -> float | None:
    return count / seconds if seconds > 0 and count else None


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


# ---------------------------------------------------------------- definitions
def defs_dir() -> Path:
    """bench/defs plus a copy of the real organisation file, as DefinitionStore expects."""
    path = WORK_DIR / "defs"
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.yaml"):
        old.unlink()
    for f in (BENCH_DIR / "defs").glob("*.yaml"):
        shutil.copy(f, path)
    shutil.copy(ROOT / "process_defs" / "organisation.yaml", path)
    return path


# ---------------------------------------------------------------- databases
def _db_name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def ensure_pg_database(url: str) -> None:
    """Create the benchmark's own database if missing (never touches any other)."""
    import psycopg

    name = _db_name(url)
    if name in FORBIDDEN_DATABASES:
        raise SystemExit(f"refusing to benchmark in database {name!r}: use a database of your own")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def pg_available(url: str = PG_URL) -> str | None:
    """None if PostgreSQL answers, else the reason."""
    try:
        ensure_pg_database(url)
        return None
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - reported, the PG cases are then skipped
        return f"{type(exc).__name__}: {exc}"


def migrate(url: str) -> None:
    """The product's schema, exactly as deployed: Alembic upgrade head."""
    from workflow_app.cli import alembic_upgrade
    from workflow_app.database import normalise_url

    alembic_upgrade(normalise_url(url))


def fresh_sqlite(name: str) -> str:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    path = WORK_DIR / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    migrate(url)
    return url


def fresh_pg(url: str = PG_URL) -> str:
    import psycopg

    ensure_pg_database(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    migrate(url)
    return url


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


# ---------------------------------------------------------------- the workload's people
@dataclass
class People:
    submitter: int
    reviewers: list[list[int]]   # per CHAIN step, MEMBERS_PER_STEP user ids
    definition_id: int


def setup_chain(url: str) -> People:
    """Sync the bench definitions (the product's DefinitionStore) and create the people."""
    from sqlalchemy import select

    from workflow_app.database import Database
    from workflow_app.models import Membership, ProcessDefinition, User
    from workflow_app.services.definitions import DefinitionStore

    db = Database(url)
    try:
        with db.write() as s:
            DefinitionStore(defs_dir()).sync(s, datetime.now(timezone.utc))
            submitter = _user(s, User, Membership, "b_submitter", [(SUBMIT_DEPARTMENT, "submitter")])
            reviewers = [[_user(s, User, Membership, f"b_{step}_{i}", [(dept, role)])
                          for i in range(MEMBERS_PER_STEP)] for step, dept, role in CHAIN]
            definition_id = s.scalar(select(ProcessDefinition.id).where(
                ProcessDefinition.key == PROCESS_KEY, ProcessDefinition.is_latest.is_(True)))
        return People(submitter, reviewers, definition_id)
    finally:
        db.dispose()


def _user(session, User, Membership, username: str, memberships) -> int:
    user = User(username=username, display_name=username, password_hash="!bench-no-login")
    user.memberships = [Membership(department_code=d, role=r, rank=i)
                        for i, (d, r) in enumerate(memberships)]
    session.add(user)
    session.flush()
    return user.id


# ---------------------------------------------------------------- the machine
def machine_info(pg_url: str | None = PG_URL) -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": _run(["nproc"]) or str(os.cpu_count()),
        "cpu": cpu or platform.processor(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": None,
        "pg_settings": {},
        "commit": _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "kernel": platform.release(),
    }
    import sqlalchemy
    info["sqlalchemy"] = sqlalchemy.__version__
    try:
        import psycopg
        info["psycopg"] = psycopg.__version__
        if pg_url and pg_available(pg_url) is None:
            with psycopg.connect(pg_url) as conn:
                info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
                for name in ("fsync", "synchronous_commit", "shared_buffers", "work_mem"):
                    info["pg_settings"][name] = conn.execute(f"SHOW {name}").fetchone()[0]
    except Exception as exc:  # noqa: BLE001
        info["postgresql"] = f"unavailable ({type(exc).__name__})"
    return info


def _run(cmd: list[str]) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
