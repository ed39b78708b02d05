"""Notifications (the in-app notification centre and its e-mail outbox) and the official holiday
schedules loaded into the database.

`Notification` rows are written in the same transaction as the action that causes them (a task
opened, an application returned or decided, a reminder rung ...). E-mail is an outbox: a row with
`email_to` set and `emailed_at` NULL is due to be sent; the SLA sweeper sends it (selecting with
`FOR UPDATE SKIP LOCKED`, so several sweepers never send one twice at once) and stamps
`emailed_at`. `email_to` is the address at the time of the action (NULL: no e-mail wanted).

`CalendarYear` keeps each year's State Council schedule as loaded by `flask calendar load`, so every
app process on every host builds the same `WorkingCalendar` (process_defs/calendars + these rows).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

MAX_EMAIL_ATTEMPTS = 5


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (
        # The centre: my notifications newest first; the header badge: my unread count.
        Index("ix_notification_user_created", "user_id", "created_at"),
        Index("ix_notification_user_unread", "user_id", postgresql_where=text("read_at IS NULL"),
              sqlite_where=text("read_at IS NULL")),
        # The outbox the sweeper drains.
        Index("ix_notification_outbox", "id",
              postgresql_where=text("email_to IS NOT NULL AND emailed_at IS NULL"),
              sqlite_where=text("email_to IS NOT NULL AND emailed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))  # task, returned, decided, remind, escalate ...
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"),
                                                    index=True)
    task_id: Mapped[int | None] = mapped_column()
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column()
    email_to: Mapped[str | None] = mapped_column(String(200))
    emailed_at: Mapped[datetime | None] = mapped_column()
    email_attempts: Mapped[int] = mapped_column(default=0)
    email_error: Mapped[str | None] = mapped_column(String(300))


class CalendarYear(Base):
    """One year's official schedule (the State Council notice) as YAML text, validated on load."""

    __tablename__ = "calendar_year"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(Text)            # the YAML as loaded
    hash: Mapped[str] = mapped_column(String(64))        # SHA-256 of `source`
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    loaded_by: Mapped[str] = mapped_column(String(100), default="")
