"""Writing and verifying the decision trail.

`append_instance_event` extends an instance's chain using the head carried on the locked instance
row (no extra read); the caller writes the new head back in the same UPDATE that bumps the
instance version. `append_system_event` extends the system chain under a row lock on its head.
`verify` streams every chain in order and reports the first broken event. It is the one
verification of the live database (services/archive.verify adds the archive files to it):
instances archived by `flask trail archive` are expected to have no live events, and their
chains are checked in the archive files.

How `verify` stays fast (≥ 100,000 events/s at a million events) without a second definition of
the hash: `engine.trail` (event_hash / verify_chain) is the single definition, and it has the last
word on every break reported here.
  * Rows are streamed as plain tuples through Core on the session's connection (no ORM entities,
    no per-row mappings), ordered by (instance_id, seq) on `uq_trail_instance_seq`.
  * On PostgreSQL the query renders the hashed fields before `details` the way
    `engine.trail.event_hash` encodes them (text forms as `engine.trail._text` gives them,
    UTF-8, length-prefixed) as one bytea per event, so Python only hashes. `details` is
    canonicalised once per distinct stored text (a bounded memo: most events carry one of a few
    shapes). The encoding is length-delimited, so distinct rows never render alike.
  * That fast path is only a filter: a chain it does not accept is re-read with typed values and
    judged by `engine.trail.verify_chain`, whose Break is the one reported. If the reference finds
    nothing wrong where the fast path did (the two disagree: the format changed), the whole range
    is verified again with the reference alone — never a false report, never a silent pass.
  * `workers > 1` (PostgreSQL) verifies contiguous instance-id ranges in that many processes;
    chains are independent. Ranges are collected in instance-id order and the first range with a
    break decides, so the report names the same first broken event as one process would.
Every scan reads one snapshot (REPEATABLE READ on PostgreSQL; a SQLite read transaction already
is one): an action committing meanwhile cannot make a head and its events disagree.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from pathlib import Path

from sqlalchemy import Text, bindparam, cast, func, insert, literal_column, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..engine import trail as _reference
from ..engine.trail import GENESIS, HASHED_FIELDS, Break, event_hash, verify_chain
from ..models import ProcessInstance, TrailEvent, TrailHead

SYSTEM_CHAIN = "system"
_COLUMNS = ("id", "prev_hash", "hash") + HASHED_FIELDS

_EVENTS, _INSTANCES = TrailEvent.__table__, ProcessInstance.__table__
_E, _I = _EVENTS.c, _INSTANCES.c


def build_event(*, prev_hash: str, seq: int, instance_id: int | None, created_at: datetime,
                **fields: object) -> dict:
    row = {name: fields.get(name) for name in HASHED_FIELDS}
    row.update(instance_id=instance_id, seq=seq, created_at=created_at,
               details=fields.get("details") or {}, actor_name=fields.get("actor_name") or "")
    row["prev_hash"] = prev_hash or GENESIS
    row["hash"] = event_hash(row["prev_hash"], row)
    return row


def append_system_event(session: Session, *, now: datetime, action: str, **fields: object) -> dict:
    head = session.execute(select(TrailHead).where(TrailHead.chain == SYSTEM_CHAIN)
                           .with_for_update()).scalar_one_or_none()
    if head is None:
        head = TrailHead(chain=SYSTEM_CHAIN, head=GENESIS, count=0)
        session.add(head)
        session.flush()
    row = build_event(prev_hash=head.head, seq=head.count + 1, instance_id=None, created_at=now,
                      action=action, **fields)
    session.execute(insert(TrailEvent), [row])
    head.head, head.count = row["hash"], head.count + 1
    session.flush()
    return row


@dataclass
class VerifyResult:
    checked: int
    chains: int
    broken: Break | None
    chain: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


# ---------------------------------------------------------------- statements (built once)
# Typed columns, for the reference check: (instance_id, id, prev_hash, hash, *HASHED_FIELDS).
_TYPED_KEYS = ("id", "prev_hash", "hash") + HASHED_FIELDS
_TYPED = [_E.instance_id] + [_E[name] for name in _TYPED_KEYS]
_TYPED_SEQ = 1 + _TYPED_KEYS.index("seq")
# The fast path (PostgreSQL): the query renders the preimage of the 16 fields before `details`
# as ONE bytea, exactly as `engine.trail.event_hash` encodes them — each field's text form
# (timestamps as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, integers in decimal) as UTF-8, prefixed
# with its byte length and ":"; NULL as "1:\x00". Rows: (instance_id, id, seq, prev_hash, hash,
# preimage bytes, details text). The server does in C what costs Python most per event.
_TEXT_FORM = {
    "created_at": func.to_char(func.timezone("UTC", _E.created_at), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    **{name: cast(_E[name], Text) for name in ("instance_id", "seq", "actor_id", "on_behalf_of_id", "task_id",
                                               "definition_id")},
}
_NULL_FIELD = literal_column("'\\x313a00'::bytea")  # b"1:\x00"


def _prefixed(name: str):
    text_form = _TEXT_FORM.get(name, _E[name])
    # `||` (not concat()) so that NULL stays NULL and becomes the NULL marker
    joined = cast(func.octet_length(text_form), Text).op("||")(literal_column("':'")).op("||")(text_form)
    return func.coalesce(func.convert_to(joined, literal_column("'UTF8'")), _NULL_FIELD)


def _preimage():
    fields = [_prefixed(name) for name in HASHED_FIELDS[:-1]]
    expr = fields[0]
    for field in fields[1:]:
        expr = expr.op("||")(field)
    return expr


_FAST_READY = HASHED_FIELDS[-1] == "details"  # the fast path hashes `details` last, on its own
_FAST = [_E.instance_id, _E.id, _E.seq, _E.prev_hash, _E.hash, _preimage(), cast(_E.details, Text)]
_ORDER = (_E.instance_id, _E.seq)


def _bounded(stmt, column, lo: bool, hi: bool):
    if lo:
        stmt = stmt.where(column >= bindparam("lo"))
    if hi:
        stmt = stmt.where(column <= bindparam("hi"))
    return stmt


_STATEMENTS: dict = {}


def _statement(kind: str, lo: bool, hi: bool):
    """Prebuilt per (kind, bounds): statements memoise their cache key, so none is rebuilt."""
    key = (kind, lo, hi)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        if kind == "heads":
            stmt = _bounded(select(_I.id, _I.trail_head, _I.trail_count), _I.id, lo, hi)
        else:
            stmt = _bounded(select(*(_FAST if kind == "fast" else _TYPED))
                            .where(_E.instance_id.is_not(None)), _E.instance_id, lo, hi).order_by(*_ORDER)
        _STATEMENTS[key] = stmt
    return stmt


_CHAIN_EVENTS = select(*_TYPED).where(_E.instance_id == bindparam("iid")).order_by(_E.seq)
_SYSTEM_EVENTS = select(*_TYPED).where(_E.instance_id.is_(None)).order_by(_E.seq)
_SYSTEM_HEAD = select(TrailHead.__table__.c.head, TrailHead.__table__.c.count).where(
    TrailHead.__table__.c.chain == SYSTEM_CHAIN)
_ID_RANGE = select(func.min(_I.id), func.max(_I.id))
ARCHIVE_EVENT = "trail_archive"
_ARCHIVE_RECORDS = select(_E.details).where(_E.instance_id.is_(None), _E.action == ARCHIVE_EVENT).order_by(_E.seq)


# ---------------------------------------------------------------- the checks
_FORMAT = _reference._FORMAT  # one definition of the format: engine/trail.py
_sha256 = hashlib.sha256
_MEMO_LIMIT = 10_000


class _Disagreement(Exception):
    """The fast path refused a chain the reference accepts: use the reference for the range."""


def _canonical_details(memo: dict, stored: str | None) -> bytes:
    """The length-prefixed text `engine.trail._text` gives the decoded `details` (JSON text as
    PostgreSQL returns it, decoded like the driver does): once per distinct stored text."""
    chunk = memo.get(stored)
    if chunk is None:
        value = None if stored is None else json.loads(stored)
        encoded = _reference._text(value).encode("utf-8")
        chunk = b"%d:%s" % (len(encoded), encoded)
        if len(memo) < _MEMO_LIMIT:
            memo[stored] = chunk
    return chunk


def _fast_chain(rows, head: str, count: int, memo: dict) -> int | None:
    """Events checked when the whole chain verifies (link, seq, hash, head, count); None when
    anything is off — the caller then asks the reference which event is first and why."""
    prev, n = GENESIS, 0
    for row in rows:
        if n == count or row[2] != n + 1 or row[3] != prev:
            return None
        actual = _sha256(_FORMAT + prev.encode() + row[5] + _canonical_details(memo, row[6])).hexdigest()
        if actual != row[4]:
            return None
        prev, n = actual, n + 1
    if n != count or prev != (head or GENESIS):
        return None
    return n


def _typed_events(rows) -> list[dict]:
    return [dict(zip(_TYPED_KEYS, row[1:])) for row in rows]


@dataclass
class _Part:
    checked: int
    chains: int
    broken: Break | None = None
    chain: str | None = None


def _scan(conn: Connection, lo: int | None, hi: int | None, batch: int, fast: bool,
          archived: frozenset[int] = frozenset()) -> _Part:
    """Verify the instance chains with lo <= instance_id <= hi (None: unbounded), in id order;
    stop at the first break: a broken chain, events of no known instance, live events of an
    archived instance, or a chain whose events are all missing — whichever comes first in
    instance-id order. Archived instances (their events moved to an archive file, recorded in
    the system chain) are expected to have no live events; `--archive FILE` verifies those."""
    bounds = {k: v for k, v in (("lo", lo), ("hi", hi)) if v is not None}
    heads = {i: (h, c) for i, h, c in conn.execute(_statement("heads", lo is not None, hi is not None), bounds)}
    due = sorted(i for i, (_h, c) in heads.items() if c and i not in archived)  # chains that must have events
    p, checked, chains, memo = 0, 0, 0, {}
    result = conn.execute(_statement("fast" if fast else "typed", lo is not None, hi is not None), bounds,
                          execution_options={"yield_per": batch})
    try:
        for iid, rows in groupby(result, key=itemgetter(0)):
            if p < len(due) and due[p] < iid:
                break
            if p < len(due) and due[p] == iid:
                p += 1
            if iid not in heads or iid in archived:
                first = next(rows)
                why = "live event of an archived instance" if iid in archived else "events belong to no known instance"
                return _Part(checked, chains, Break(first[1], first[2] if fast else first[_TYPED_SEQ], why),
                             f"instance {iid}")
            head, count = heads[iid]
            broken = None
            if fast:
                n = _fast_chain(rows, head, count, memo)
                if n is None:
                    n, broken = verify_chain(_typed_events(conn.execute(_CHAIN_EVENTS, {"iid": iid})), head, count)
                    if broken is None:
                        raise _Disagreement(iid)
            else:
                n, broken = verify_chain(_typed_events(rows), head, count)
            checked += n
            chains += 1
            if broken is not None:
                return _Part(checked, chains, broken, f"instance {iid}")
    finally:
        result.close()  # PostgreSQL: end the server-side cursor if we stopped mid-way
    if p < len(due):
        missing = due[p]
        return _Part(checked, chains, Break(None, 1, f"all {heads[missing][1]} events are missing"),
                     f"instance {missing}")
    return _Part(checked, chains)


def _fast_possible(conn: Connection) -> bool:
    """PostgreSQL through psycopg with a UTF-8 server: octet_length counts bytes of the server
    encoding, and the preimage is UTF-8."""
    if not _FAST_READY or conn.dialect.name != "postgresql":
        return False
    info = getattr(conn.connection.driver_connection, "info", None)
    status = getattr(info, "parameter_status", None)
    return status is not None and status("server_encoding") == "UTF8"


def archived_instances(conn: Connection) -> frozenset[int]:
    """Instances whose events were moved to archive files (`flask trail archive`), as recorded
    by the system chain's `trail_archive` events (id ranges)."""
    ids: set[int] = set()
    for (details,) in conn.execute(_ARCHIVE_RECORDS):
        if isinstance(details, str):
            details = json.loads(details)
        for a, b in (details or {}).get("instances") or []:
            ids.update(range(int(a), int(b) + 1))
    return frozenset(ids)


def _scan_range(conn: Connection, lo: int | None, hi: int | None, batch: int) -> _Part:
    archived = archived_instances(conn)
    if _fast_possible(conn):
        try:
            return _scan(conn, lo, hi, batch, True, archived)
        except _Disagreement:
            pass
    return _scan(conn, lo, hi, batch, False, archived)


def _snapshot(session: Session) -> Connection:
    """The session's connection; on PostgreSQL in one snapshot (REPEATABLE READ) when the
    session has not begun yet, so heads and events are read as of the same moment."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        return session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return session.connection()


def verify(session: Session, batch: int = 5000, *, workers: int = 1) -> VerifyResult:
    """Verify every chain. Stops at the first break (chains in instance-id order, system last).

    Reads one snapshot (see `_snapshot`). `workers` > 1 (PostgreSQL only; elsewhere one process)
    verifies instance-id ranges in that many child processes, each in a snapshot of its own
    (chains are independent); the result names the same first break as one process would."""
    conn = _snapshot(session)
    if workers > 1 and conn.dialect.name == "postgresql":
        part = _scan_parallel(conn, workers, batch)
    else:
        part = _scan_range(conn, None, None, batch)
    if part.broken is not None:
        return VerifyResult(part.checked, part.chains, part.broken, part.chain)
    system = conn.execute(_SYSTEM_HEAD).one_or_none()
    system_events = _typed_events(conn.execute(_SYSTEM_EVENTS))
    n, broken = verify_chain(system_events, system[0] if system else GENESIS, system[1] if system else 0)
    return VerifyResult(part.checked + n, part.chains + 1, broken, SYSTEM_CHAIN if broken else None)


# ---------------------------------------------------------------- several processes
# Workers are plain child processes running `_worker`, not multiprocessing: its spawn method
# re-imports the caller's main module, which a script without a `__main__` guard cannot survive.
# Each one verifies one range and prints its result as JSON; the URL travels in the environment.
_PARALLEL_MIN_IDS = 5000  # below this, starting processes costs more than it saves
_WORKER_MAIN = "import sys; from workflow_app.services.trail import _worker; _worker(sys.argv[1])"


def _ranges(lo: int, hi: int, pieces: int) -> list[tuple[int | None, int | None]]:
    """`pieces` contiguous id ranges covering everything: the first open below, the last above
    (events of an unknown instance id still land in one)."""
    cuts = sorted({lo + (hi - lo + 1) * k // pieces for k in range(1, pieces)} - {lo})
    return list(zip([None] + cuts, [c - 1 for c in cuts] + [None]))


def _scan_parallel(conn: Connection, workers: int, batch: int) -> _Part:
    lo, hi = conn.execute(_ID_RANGE).one()
    if lo is None or hi - lo < _PARALLEL_MIN_IDS:
        return _scan_range(conn, None, None, batch)
    env = dict(os.environ, PARKFLOW_VERIFY_URL=conn.engine.url.render_as_string(hide_password=False))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                      env.get("PYTHONPATH")]))
    children = [subprocess.Popen([sys.executable, "-c", _WORKER_MAIN, json.dumps([a, b, batch])], env=env,
                                 stdout=subprocess.PIPE, text=True)
                for a, b in _ranges(lo, hi, workers)]
    total = _Part(0, 0)
    try:
        for child in children:  # in range order: the first range with a break decides
            out, _ = child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"trail verification worker failed (exit {child.returncode})")
            checked, chains, broken, chain = json.loads(out)
            total.checked += checked
            total.chains += chains
            if broken is not None:
                total.broken, total.chain = Break(*broken), chain
                break
    finally:
        for child in children:  # later ranges no longer matter once one broke (or on error)
            if child.poll() is None:
                child.kill()
            child.wait()
            if not child.stdout.closed:
                child.stdout.close()
    return total


def _worker(argument: str) -> None:
    """A worker process: verify one range in its own read-only snapshot, print the result."""
    from ..database import make_engine

    lo, hi, batch = json.loads(argument)
    engine = make_engine(os.environ["PARKFLOW_VERIFY_URL"], pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                part = _scan_range(conn, lo, hi, batch)
    finally:
        engine.dispose()
    broken = part.broken
    print(json.dumps([part.checked, part.chains,
                      None if broken is None else [broken.event_id, broken.seq, broken.reason], part.chain]))


def set_instance_head(session: Session, instance_id: int, head: str, count: int) -> None:
    session.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id)
                    .values(trail_head=head, trail_count=count))
