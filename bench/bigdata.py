"""The large PostgreSQL data set for the inbox and trail-verify cases, built once and kept.

200,000 instances of `bench_chain`, each with 5 tasks (1,000,000 tasks) and a valid 5-event
trail chain (1,000,000 events, hashed by the product's own `services.trail.build_event`), 500
users in the 10 departments of organisation.yaml. Three quarters of the instances are finished;
each running one has one open task, 60 % of them assigned to a person (1 % of those delegated)
and 40 % waiting unclaimed in a department queue, so an average user has ~60 open tasks and an
average queue ~2,000. Bulk-loaded with COPY (psycopg); a marker table records the parameters,
and a run that finds them skips the fill (`--refill` forces it).
"""
from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta, timezone

from .common import PG_BIG_URL, PROCESS_KEY, Budget, defs_dir, ensure_pg_database, migrate

FILL_VERSION = "v1"
INSTANCES = 200_000
TASKS_PER_INSTANCE = 5
USERS_PER_DEPARTMENT = 50
RUNNING_SHARE = 0.25
PERSONAL_SHARE = 0.60
DELEGATED_SHARE = 0.01
STEPS = ("review_a", "review_b", "review_c", "final", "final")  # the 5th: a 加签 co-signer
SEED = 7


def spec(instances: int = INSTANCES) -> dict:
    return {"version": FILL_VERSION, "instances": instances, "tasks": instances * TASKS_PER_INSTANCE,
            "events": instances * TASKS_PER_INSTANCE, "users": None}


def schema_head() -> str:
    """The newest Alembic revision of the product: a cached data set built on an older schema is
    rebuilt (the product's queries may need the newer columns or indexes)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from .common import ROOT

    cfg = AlembicConfig(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return ",".join(sorted(ScriptDirectory.from_config(cfg).get_heads()))


def current(url: str = PG_BIG_URL) -> dict | None:
    """The marker of a completed fill, or None."""
    import psycopg

    ensure_pg_database(url)
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('public.bench_fill_info')").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT info FROM bench_fill_info WHERE id = 1").fetchone()
        return row[0] if row else None


def ensure(instances: int = INSTANCES, refill: bool = False, url: str = PG_BIG_URL,
           budget_s: float = 1800, log=print) -> dict:
    """Fill unless an identical fill is already there. Returns the marker (with timings)."""
    marker = None if refill else current(url)
    head = schema_head()
    if marker and marker.get("schema") != head:
        marker = _upgrade(url, marker, head, log)
    if marker and marker.get("version") == FILL_VERSION and marker.get("instances") == instances:
        log(f"  big data set present ({marker['tasks']:,} tasks, {marker['events']:,} events, "
            f"filled {marker['filled_at']} in {marker['fill_seconds']:.0f} s): not refilled")
        marker["reused"] = True
        return marker
    return _fill(url, instances, Budget(budget_s), log)


def _upgrade(url: str, marker: dict, head: str, log) -> dict | None:
    """The product gained migrations since the fill: apply them to the kept data (as production
    would), re-analyse, record the new head. None (so: refill) if that fails."""
    import json as _json

    import psycopg

    log(f"  big data set is on schema {marker.get('schema')}, the product on {head}: alembic upgrade")
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
            marker["schema"] = head
            conn.execute("UPDATE bench_fill_info SET info = %s::jsonb WHERE id = 1", (_json.dumps(marker),))
        return marker
    except Exception as exc:  # noqa: BLE001 - then rebuild from scratch
        log(f"  upgrade failed ({type(exc).__name__}: {exc}); refilling")
        return None


def _fill(url: str, instances: int, budget: Budget, log) -> dict:
    import psycopg
    from sqlalchemy import select

    from workflow_app.database import Database
    from workflow_app.engine.organisation import load_organisation
    from workflow_app.models import ProcessDefinition
    from workflow_app.services.definitions import DefinitionStore
    from workflow_app.services.trail import build_event

    t0 = time.monotonic()
    rng = random.Random(SEED)
    ensure_pg_database(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    migrate(url)
    defs = defs_dir()
    db = Database(url)
    with db.write() as s:
        DefinitionStore(defs).sync(s, datetime.now(timezone.utc))
        definition_id, definition_hash = s.execute(select(
            ProcessDefinition.id, ProcessDefinition.content_hash).where(
            ProcessDefinition.key == PROCESS_KEY, ProcessDefinition.is_latest.is_(True))).one()
    db.dispose()
    departments = sorted(load_organisation(defs / "organisation.yaml").departments)
    members: dict[str, list[int]] = {}
    user_rows, membership_rows = [], []
    uid = 0
    for dept in departments:
        for i in range(USERS_PER_DEPARTMENT):
            uid += 1
            members.setdefault(dept, []).append(uid)
            user_rows.append((uid, f"bu_{dept}_{i:02d}", f"用户{dept}{i:02d}", "!bench-no-login"))
            membership_rows.append((uid, uid, dept, "reviewer", i))
    user_dept = {u: d for d, us in members.items() for u in us}
    all_users = list(user_dept)

    end = datetime.now(timezone.utc).replace(microsecond=0)
    span = timedelta(days=3 * 365).total_seconds()
    form = {"project_name": "镇海园区项目", "investment_wan": "1200"}
    form_json = json.dumps(form, ensure_ascii=False)
    from workflow_app.engine.trail import form_hash as hash_form
    fhash = hash_form(form)

    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY app_user (id, username, display_name, password_hash, is_active, "
                          "password_changed_at, must_change_password, password_history, failed_logins, "
                          "locale, created_at) FROM STDIN") as copy:
                for u, name, display, pw in user_rows:
                    copy.write_row((u, name, display, pw, True, end, False, "[]", 0, "zh_Hans_CN", end))
            with cur.copy("COPY membership (id, user_id, department_code, role, rank) FROM STDIN") as copy:
                for row in membership_rows:
                    copy.write_row(row)
        conn.commit()
        log(f"  users: {len(user_rows)} in {len(departments)} departments")

        task_id = 0
        open_count = personal = queued = 0
        chunk = 20_000  # one COPY protocol per connection at a time: copy chunk by chunk
        for first in range(1, instances + 1, chunk):
            if budget.expired():
                raise TimeoutError("big data fill exceeded its time budget")
            inst_rows, task_rows, event_rows = [], [], []
            for iid in range(first, min(first + chunk, instances + 1)):
                created = end - timedelta(seconds=span * (1 - iid / instances))
                submitter = rng.choice(all_users)
                running = rng.random() < RUNNING_SHARE
                head, prev = "", ""
                for j, step in enumerate(STEPS):
                    task_id += 1
                    at = created + timedelta(hours=j + 1)
                    dept = rng.choice(departments)
                    actor = rng.choice(members[dept])
                    is_open = running and j == TASKS_PER_INSTANCE - 1
                    origin, assignee, delegate = "added" if j == 4 else "route", actor, None
                    if is_open:
                        open_count += 1
                        if rng.random() < PERSONAL_SHARE:
                            personal += 1
                            origin = "route"
                            if rng.random() < DELEGATED_SHARE:
                                delegate = rng.choice([u for u in members[dept] if u != actor])
                        else:
                            queued += 1
                            origin, assignee = "queue", None
                    task_rows.append((task_id, iid, step, j + 2, 10 if j < 4 else 20, origin,
                                      "open" if is_open else "done", dept, "reviewer", assignee, delegate,
                                      None if is_open else "approve", None if is_open else actor, at,
                                      None if is_open else at + timedelta(minutes=30), 5,
                                      at + timedelta(days=7), False, 0))
                    # one event per action: the start, then four decisions
                    seq = j + 1
                    fields = dict(
                        action="start" if j == 0 else "approve", actor_id=submitter if j == 0 else actor,
                        actor_name=f"用户{seq}", actor_department=user_dept[submitter] if j == 0 else dept,
                        actor_role="submitter" if j == 0 else "reviewer",
                        task_id=None if j == 0 else task_id - 1, from_step=None if j == 0 else STEPS[j - 1],
                        to_step=step, opinion=None if j == 0 else "同意", definition_id=definition_id,
                        definition_hash=definition_hash, form_hash=fhash,
                        details={"fields": sorted(form)} if j == 0 else {"verdict": "approved"})
                    ev = build_event(prev_hash=prev, seq=seq, instance_id=iid, created_at=at, **fields)
                    event_rows.append((iid, seq, at, ev["action"], ev["actor_id"], ev["actor_name"],
                                       ev["actor_department"], ev["actor_role"], ev["task_id"],
                                       ev["from_step"], ev["to_step"], ev["opinion"], definition_id,
                                       definition_hash, fhash, json.dumps(ev["details"], ensure_ascii=False),
                                       ev["prev_hash"], ev["hash"]))
                    prev = head = ev["hash"]
                inst_rows.append((iid, definition_id, PROCESS_KEY, f"镇海园区项目 {iid}", "none",
                                  "running" if running else "approved", "final" if running else "done",
                                  TASKS_PER_INSTANCE + 1, form_json, submitter, user_dept[submitter],
                                  TASKS_PER_INSTANCE + 1, head, TASKS_PER_INSTANCE, created,
                                  created + timedelta(hours=TASKS_PER_INSTANCE),
                                  None if running else created + timedelta(hours=TASKS_PER_INSTANCE)))
            with conn.cursor() as cur:
                for sql, rows in (
                        ("COPY process_instance (id, definition_id, process_key, title, subject_kind, status, "
                         "current_step, round, form_data, submitter_id, submitter_department, version, "
                         "trail_head, trail_count, created_at, updated_at, ended_at) FROM STDIN", inst_rows),
                        ("COPY task (id, instance_id, step, round, seq, origin, status, department, role, "
                         "assignee_id, delegate_id, decision, acted_by_id, created_at, completed_at, "
                         "deadline_days, due_at, due_provisional, escalation_level) FROM STDIN", task_rows),
                        ("COPY trail_event (instance_id, seq, created_at, action, actor_id, actor_name, "
                         "actor_department, actor_role, task_id, from_step, to_step, opinion, definition_id, "
                         "definition_hash, form_hash, details, prev_hash, hash) FROM STDIN", event_rows)):
                    with cur.copy(sql) as copy:
                        for row in rows:
                            copy.write_row(row)
            conn.commit()
            log(f"    {min(first + chunk - 1, instances):,} instances ({time.monotonic() - t0:.0f} s)")
        conn.commit()
        log(f"  copied {instances:,} instances, {task_id:,} tasks, {task_id:,} events "
            f"({time.monotonic() - t0:.0f} s); analysing")
        for table, column in (("app_user", "id"), ("membership", "id"), ("process_instance", "id"),
                              ("task", "id")):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                         f"(SELECT max({column}) FROM {table}))")
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        marker = {**spec(instances), "users": len(user_rows), "departments": len(departments),
                  "open_tasks": open_count, "personal_open": personal, "queued_open": queued,
                  "filled_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "fill_seconds": time.monotonic() - t0, "seed": SEED, "schema": schema_head()}
        conn.execute("CREATE TABLE bench_fill_info (id int PRIMARY KEY, info jsonb NOT NULL)")
        conn.execute("INSERT INTO bench_fill_info VALUES (1, %s::jsonb)", (json.dumps(marker),))
    log(f"  big data set filled in {marker['fill_seconds']:.0f} s")
    marker["reused"] = False
    return marker
