"""PROTOTYPE of the proposed `services.trail.verify` (bench/README.md "Findings"), NOT the product.

Same checks, same hash (`engine.trail.event_hash`'s preimage, byte for byte), different plumbing:

  V1  stream plain tuples from a psycopg server-side cursor (was: ORM-annotated select ->
      `instances()` -> RowMapping -> `Mapping.get` per field, and a TypeDecorator per timestamp);
  V2  let PostgreSQL render `created_at` in the hash's text form (`to_char(... AT TIME ZONE 'UTC')`)
      and integers as text, so Python only encodes and length-prefixes;
  V3  canonicalise `details` once per distinct JSONB text (a bounded memo: most events carry one of
      a few shapes such as {"verdict": "approved"}), instead of json.loads + json.dumps per event;
  V4  verify chains in W processes, each a contiguous range of instance ids (chains are
      independent; each range is its own ordered index scan on uq_trail_instance_seq).

Opt-in: `python -m bench.run --only proposal_verify`. Returns the product-shaped result; a broken
chain is reported like the product reports it (first break per range).
"""
from __future__ import annotations

import hashlib
import json
import time

from workflow_app.engine.trail import GENESIS, HASHED_FIELDS

_FORMAT = b"parkflow-trail-v1"
_AS_TEXT = {"instance_id": "instance_id::text", "seq": "seq::text",
            "created_at": "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
            "actor_id": "actor_id::text", "on_behalf_of_id": "on_behalf_of_id::text",
            "task_id": "task_id::text", "definition_id": "definition_id::text", "details": "details::text"}
_COLUMNS = ", ".join(f"{_AS_TEXT.get(f, f)} AS h_{f}" for f in HASHED_FIELDS)
_SQL = (f"SELECT instance_id, seq, id, prev_hash, hash, {_COLUMNS} FROM trail_event "
        "WHERE instance_id BETWEEN %s AND %s ORDER BY trail_event.instance_id, trail_event.seq")
_NONE = b"1:\x00"


def _canonical_details(memo: dict, text: str | None) -> bytes:
    b = memo.get(text)
    if b is None:
        value = json.loads(text) if text is not None else None
        s = "\x00" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        encoded = s.encode("utf-8")
        b = b"%d:%s" % (len(encoded), encoded)
        if len(memo) < 10_000:
            memo[text] = b
    return b


def _verify_range(url: str, first: int, last: int) -> dict:
    import psycopg

    checked = chains = 0
    broken = None
    memo: dict = {}
    sha256 = hashlib.sha256
    with psycopg.connect(url) as conn:
        heads = dict(((i, (h, c)) for i, h, c in conn.execute(
            "SELECT id, trail_head, trail_count FROM process_instance WHERE id BETWEEN %s AND %s", (first, last))))
        with conn.cursor(name="verify", withhold=False) as cur:
            cur.itersize = 20_000
            cur.execute(_SQL, (first, last))
            current, prev, expected, n = None, GENESIS, 1, 0
            for row in cur:
                iid, seq, eid, prev_hash, stored = row[0], row[1], row[2], row[3], row[4]
                if iid != current:
                    if current is not None:
                        head, count = heads.pop(current, (None, None))
                        if n != count or prev != (head or GENESIS):
                            broken = (current, None, "chain does not end at its recorded head")
                            break
                        chains += 1
                    current, prev, expected, n = iid, GENESIS, 1, 0
                if seq != expected or prev_hash != prev:
                    broken = (iid, eid, "sequence or link broken")
                    break
                digest = sha256(_FORMAT)
                digest.update(prev.encode())
                parts = []
                for v in row[5:-1]:
                    if v is None:
                        parts.append(_NONE)
                    else:
                        e = v.encode("utf-8")
                        parts.append(b"%d:%s" % (len(e), e))
                parts.append(_canonical_details(memo, row[-1]))
                digest.update(b"".join(parts))
                actual = digest.hexdigest()
                if actual != stored:
                    broken = (iid, eid, "content does not match its hash (edited)")
                    break
                prev, expected, n = actual, expected + 1, n + 1
                checked += 1
            if broken is None and current is not None:
                head, count = heads.pop(current, (None, None))
                if n != count or prev != (head or GENESIS):
                    broken = (current, None, "chain does not end at its recorded head")
                else:
                    chains += 1
        conn.rollback()
    if broken is None and any(c for _h, c in heads.values()):
        broken = (min(i for i, (_h, c) in heads.items() if c), None, "events missing")
    return {"checked": checked, "chains": chains, "broken": broken}


def verify(url: str, workers: int = 2) -> dict:
    """Verify every instance chain with `workers` processes; the system chain is left to the
    product's code (a handful of events)."""
    import multiprocessing as mp

    import psycopg

    with psycopg.connect(url) as conn:
        lo, hi, total = conn.execute("SELECT min(id), max(id), count(*) FROM process_instance").fetchone()
    bounds = [lo + (hi - lo + 1) * k // workers for k in range(workers)] + [hi + 1]
    ranges = [(bounds[k], bounds[k + 1] - 1) for k in range(workers)]
    t = time.perf_counter()
    if workers == 1:
        parts = [_verify_range(url, *ranges[0])]
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.starmap(_verify_range, [(url, a, b) for a, b in ranges])
    seconds = time.perf_counter() - t
    checked = sum(p["checked"] for p in parts)
    broken = next((p["broken"] for p in parts if p["broken"]), None)
    return {"checked": checked, "chains": sum(p["chains"] for p in parts), "ok": broken is None,
            "broken": broken, "seconds": seconds, "events_per_s": checked / seconds if seconds else None,
            "workers": workers}
