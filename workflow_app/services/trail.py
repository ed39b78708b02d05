"""Writing and verifying the decision trail.

`append_instance_event` extends an instance's chain using the head carried on the locked instance
row (no extra read); the caller writes the new head back in the same UPDATE that bumps the
instance version. `append_system_event` extends the system chain under a row lock on its head.
`verify` streams every chain in order and reports the first broken event.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ..engine.trail import GENESIS, HASHED_FIELDS, Break, event_hash, verify_chain
from ..models import ProcessInstance, TrailEvent, TrailHead

SYSTEM_CHAIN = "system"
_COLUMNS = ("id", "prev_hash", "hash") + HASHED_FIELDS


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


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Verify every chain. Stops at the first break (chains in instance-id order, system last)."""
    heads = {row.id: (row.trail_head, row.trail_count) for row in session.execute(
        select(ProcessInstance.id, ProcessInstance.trail_head, ProcessInstance.trail_count))}
    columns = [getattr(TrailEvent, c) for c in _COLUMNS]
    stream = session.execute(
        select(*columns).where(TrailEvent.instance_id.is_not(None))
        .order_by(TrailEvent.instance_id, TrailEvent.seq)
        .execution_options(yield_per=batch))
    checked = chains = 0
    current: int | None = None
    pending: list[dict] = []

    def finish(instance_id: int, events: list[dict]) -> Break | None:
        nonlocal checked, chains
        head, count = heads.pop(instance_id, (None, None))
        if head is None:
            return Break(events[0]["id"], events[0]["seq"], "events belong to no known instance")
        n, broken = verify_chain(events, head, count)
        checked += n
        chains += 1
        return broken

    for row in stream.mappings():
        if row["instance_id"] != current:
            if pending:
                broken = finish(current, pending)  # type: ignore[arg-type]
                if broken:
                    stream.close()  # PostgreSQL: end the server-side cursor left mid-way
                    return VerifyResult(checked, chains, broken, f"instance {current}")
            current, pending = row["instance_id"], []
        pending.append(row)
    if pending:
        broken = finish(current, pending)  # type: ignore[arg-type]
        if broken:
            return VerifyResult(checked, chains, broken, f"instance {current}")
    for instance_id, (head, count) in sorted(heads.items()):
        if count:
            return VerifyResult(checked, chains, Break(None, 1, f"all {count} events are missing"),
                                f"instance {instance_id}")
    system_head = session.get(TrailHead, SYSTEM_CHAIN)
    system_events = [dict(r) for r in session.execute(
        select(*columns).where(TrailEvent.instance_id.is_(None)).order_by(TrailEvent.seq)).mappings()]
    n, broken = verify_chain(system_events, system_head.head if system_head else GENESIS,
                             system_head.count if system_head else 0)
    checked += n
    chains += 1
    return VerifyResult(checked, chains, broken, SYSTEM_CHAIN if broken else None)


def set_instance_head(session: Session, instance_id: int, head: str, count: int) -> None:
    session.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id)
                    .values(trail_head=head, trail_count=count))
