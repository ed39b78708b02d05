"""The decision trail: append-only, hash-chained events.

Each instance has its own chain (ordered by `seq` within the instance); events not about an
instance (definition syncs, migrations of many instances, calendar loads) form the system chain
(`instance_id` NULL) whose head lives in `trail_head`. Per-instance chains let actions on
different instances commit in parallel on PostgreSQL — one global chain would make every action
in the district wait for one row lock. The head of each chain is stored beside it (the instance
row, or `trail_head`), so removing the newest events of a chain is detected too.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigInt = BigInteger().with_variant(Integer(), "sqlite")


class TrailEvent(Base):
    __tablename__ = "trail_event"
    __table_args__ = (
        UniqueConstraint("instance_id", "seq", name="uq_trail_instance_seq"),
        Index("ix_trail_created", "created_at"),
        Index("ix_trail_actor", "actor_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInt,
                                    primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    seq: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    action: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    actor_department: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(64))
    on_behalf_of_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    task_id: Mapped[int | None] = mapped_column()
    from_step: Mapped[str | None] = mapped_column(String(64))
    to_step: Mapped[str | None] = mapped_column(String(64))
    opinion: Mapped[str | None] = mapped_column(Text)
    definition_id: Mapped[int | None] = mapped_column()
    definition_hash: Mapped[str | None] = mapped_column(String(64))
    form_hash: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class TrailHead(Base):
    """Head of the system chain (and of archived segments: see the archiving command)."""

    __tablename__ = "trail_head"

    chain: Mapped[str] = mapped_column(String(40), primary_key=True)
    head: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInt)


class TrailAnchor(Base):
    """A checkpoint of the whole trail (services/anchor.py): every chain's head and length as of
    event id `last_event_id`, digested with a key that is not in the database and chained to
    the previous anchor by `prev_mac`. Append-only like the trail."""

    __tablename__ = "trail_anchor"

    seq: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column()
    last_event_id: Mapped[int] = mapped_column(BigInt)
    chains: Mapped[int] = mapped_column(BigInt)
    events: Mapped[int] = mapped_column(BigInt)
    digest: Mapped[str] = mapped_column(String(64))
    prev_mac: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
