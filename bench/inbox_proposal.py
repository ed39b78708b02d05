"""PROTOTYPE check of the proposed inbox indexes (bench/README.md "Findings"), NOT the product.

The proposed indexes are created on the cached big data set under bench-only names, analysed, and
the product's own `queries.my_tasks` / `queries.queue_tasks` are measured exactly as the `inbox`
case measures them (same function, same sessions, same users); then the indexes are dropped
again. The product `inbox` case drops any leftover `bench_proposed_*` index before it measures,
so an interrupted run cannot flatter the product's figures. Opt-in: `--only proposal_inbox`.

Proposed for the product (a migration + models/process.py `Task.__table_args__`):
  new      ix_task_delegate_open  (delegate_id)           WHERE status = 'open'
           my_tasks filters `(assignee_id = :u AND delegate_id IS NULL) OR delegate_id = :u`; with
           no index on delegate_id PostgreSQL cannot use ix_task_assignee_open for the OR and walks
           every open task (ix_task_due_open as a scan of all open tasks, then a filter).
  changed  ix_task_queue_open     (department, role, id)  WHERE status = 'open' AND assignee_id IS NULL
           (was department, role, created_at): the query orders by id, so PostgreSQL fetched,
           joined and sorted the whole queue before LIMIT 50; keyed by id it reads 50 rows backward.
"""
from __future__ import annotations

PROPOSED = (
    "CREATE INDEX bench_proposed_delegate_open ON task (delegate_id) WHERE status = 'open'",
    "CREATE INDEX bench_proposed_queue_open_id ON task (department, role, id) "
    "WHERE status = 'open' AND assignee_id IS NULL",
)


def drop_proposed(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("bench_proposed_delegate_open", "bench_proposed_queue_open_id"):
            conn.execute(f"DROP INDEX IF EXISTS {name}")


def measure(url: str, queries: int, budget_s: float) -> dict:
    import time

    import psycopg

    from . import inbox

    drop_proposed(url)
    try:
        t = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            for ddl in PROPOSED:
                conn.execute(ddl)
            conn.execute("ANALYZE task")
        built = time.perf_counter() - t
        out = inbox.measure(url, queries, budget_s, prefix="explain_proposed")
        out["index_build_seconds"] = built
        return out
    finally:
        drop_proposed(url)
