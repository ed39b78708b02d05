"""The security log's hash chain (安全审计: records protected against modification).

Every `security_event` row carries `seq`, `prev_hash` and `hash` = SHA-256 over the previous
row's hash and each recorded field, length-prefixed (the decision trail's scheme, engine/trail.py,
with its own format tag). The chain's head (hash and count) is the `trail_head` row
`security_log`, so deleting the newest rows shows too.

Rows are chained when they are flushed (`install()` registers a `before_flush` listener), so
every writer — `accounts.log` or anything else adding a SecurityEvent — is covered. The head row
is locked (`FOR UPDATE`) by the first flush of a transaction that writes a security event and
held until it commits: security-log writes are serialised, which is what a single chain needs.
Keep those transactions short and take other row locks before logging (lock the head last) —
true of every caller today (they log after locking what they change).

`verify(session)` walks the chain and names the first row that does not fit.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Mapping

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..engine.trail import GENESIS, Break, chained_hash
from ..models import SecurityEvent, TrailHead

CHAIN = "security_log"
FIELDS = ("seq", "created_at", "user_id", "username", "ip", "event", "outcome", "details")
_FORMAT = b"parkflow-security-log-v1"


def row_hash(prev_hash: str, row: Mapping[str, object]) -> str:
    return chained_hash(_FORMAT, prev_hash, row, FIELDS)


def _as_row(ev: SecurityEvent) -> dict:
    return {name: getattr(ev, name) for name in FIELDS}


def _chain_new_rows(session: Session, _context, _instances) -> None:
    pending = [o for o in session.new if isinstance(o, SecurityEvent) and o.hash is None]
    if not pending:
        return
    head = session.execute(select(TrailHead).where(TrailHead.chain == CHAIN).with_for_update()
                           .execution_options(autoflush=False)).scalar_one_or_none()
    if head is None:
        head = TrailHead(chain=CHAIN, head=GENESIS, count=0)
        session.add(head)
    for ev in pending:  # in the order they were added (the order they are inserted)
        if ev.created_at is None:
            ev.created_at = datetime.now(timezone.utc)
        if ev.details is None:
            ev.details = {}
        ev.username = ev.username or ""
        ev.ip = ev.ip or ""
        ev.outcome = ev.outcome or "ok"
        ev.seq = head.count + 1
        ev.prev_hash = head.head
        ev.hash = row_hash(head.head, _as_row(ev))
        head.head, head.count = ev.hash, ev.seq


_installed = False


def install() -> None:
    """Chain security events at flush time, for every Session (idempotent)."""
    global _installed
    if not _installed:
        event.listen(Session, "before_flush", _chain_new_rows)
        _installed = True


def verify_rows(rows: Iterable[Mapping[str, object]], head: str, count: int) -> tuple[int, Break | None]:
    prev, n = GENESIS, 0
    for row in rows:
        rid, seq = row.get("id"), row["seq"]
        if seq != n + 1:
            return n, Break(rid, seq, f"sequence jumps from {n} to {seq} (a row was removed, inserted or reordered)")
        if row["prev_hash"] != prev:
            return n, Break(rid, seq, "link to the previous row does not match")
        if row_hash(prev, row) != row["hash"]:
            return n, Break(rid, seq, "content does not match its hash (edited)")
        if n == count:
            return n, Break(rid, seq, f"row beyond the recorded head of {count} rows (added by hand)")
        prev, n = row["hash"], n + 1
    if n < count:
        return n, Break(None, n + 1, f"rows {n + 1} to {count} are missing (removed from the end)")
    if prev != head:
        return n, Break(None, n, "the last row does not match the recorded head")
    return n, None


_COLUMNS = [SecurityEvent.__table__.c[c] for c in ("id", "prev_hash", "hash", *FIELDS)]


def verify(session: Session, batch: int = 5000) -> tuple[int, Break | None]:
    """(rows checked, first break or None). Rows without a seq were never chained: a break."""
    head = session.get(TrailHead, CHAIN)
    unchained = session.scalar(select(SecurityEvent.id).where(SecurityEvent.seq.is_(None)).limit(1))
    if unchained is not None:
        return 0, Break(unchained, None, "a row outside the chain (inserted bypassing the application)")
    result = session.execute(select(*_COLUMNS).order_by(SecurityEvent.seq).execution_options(yield_per=batch))
    try:
        return verify_rows(result.mappings(), head.head if head else GENESIS, head.count if head else 0)
    finally:
        result.close()  # PostgreSQL: end the server-side cursor when we stopped at a break
