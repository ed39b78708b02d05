"""Trail anchor cost (services/anchor.py): `state_digest` over N synthetic events in a SQLite file,
the computation `flask trail anchor` and `flask trail verify` make. Usage:
    .venv/bin/python -m bench.anchor_digest INSTANCES EVENTS_PER_INSTANCE
"""
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import migrate
from workflow_app.database import Database
from workflow_app.services import anchor

instances, per = int(sys.argv[1]), int(sys.argv[2])
path = Path(tempfile.mkdtemp()) / "bench.db"
url = f"sqlite:///{path}"
migrate(url)
raw = sqlite3.connect(path)
raw.execute("PRAGMA foreign_keys=OFF")
rows = ((i * per + s + 1, i + 1, s + 1, "2026-03-02 01:00:00.000000+00:00", "approve", "", "{}", "0" * 64, f"{i:032x}{s:032x}")
        for i in range(instances) for s in range(per))
raw.executemany("INSERT INTO trail_event (id, instance_id, seq, created_at, action, actor_name, details, prev_hash, hash) "
                "VALUES (?,?,?,?,?,?,?,?,?)", rows)
raw.commit(); raw.close()
db = Database(url)
t = time.perf_counter()
with db.read() as s:
    digest, chains, events = anchor.state_digest(s, b"k", instances * per)
dt = time.perf_counter() - t
print(f"{events} events in {chains} chains: digest in {dt:.2f} s ({events / dt:,.0f} events/s)")
db.dispose()
shutil.rmtree(path.parent)
