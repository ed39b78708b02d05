"""The security log (安全审计): logins, failures, locks, permission and definition changes,
exports and administrative actions. Append-only like the decision trail and hash-chained like it
(`seq`, `prev_hash`, `hash`: services/security_log.py); kept at least 185 days."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class SecurityEvent(Base):
    __tablename__ = "security_event"
    __table_args__ = (Index("ix_security_event_created", "created_at"),
                      Index("ix_security_event_user", "user_id", "created_at"),
                      Index("uq_security_event_seq", "seq", unique=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    username: Mapped[str] = mapped_column(String(64), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    event: Mapped[str] = mapped_column(String(40))      # login, login_failed, locked, logout, export ...
    outcome: Mapped[str] = mapped_column(String(20), default="ok")  # ok | refused | error
    details: Mapped[dict] = mapped_column(default=dict)
    # The hash chain (filled when the row is flushed): position, previous row's hash, own hash.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
