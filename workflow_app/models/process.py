"""Definitions as stored, running instances and their tasks.

Locking (why the columns look like this): an action locks its instance row first
(`SELECT ... FOR UPDATE`, or `BEGIN IMMEDIATE` on SQLite), then reads the tasks of the current
round, then writes. Every writer takes the instance lock before any task lock, so two actions
on the same instance serialise and cannot deadlock; `version` is checked again in the final
UPDATE as a second guard. The instance row also carries the head of its trail chain
(`trail_head`, `trail_count`), so appending a trail event needs no extra read.

Time lives here too: `due_at`, `next_reminder_at` and `paused_at` are what the SLA sweeper
selects with `FOR UPDATE SKIP LOCKED`; no process keeps timers in memory.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class ProcessDefinition(Base):
    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("key", "content_hash", name="uq_definition_key_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[int] = mapped_column()  # 1, 2, 3 ... per key, in sync order
    version: Mapped[str] = mapped_column(String(32))  # as declared in the file
    content_hash: Mapped[str] = mapped_column(String(64))
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    source_path: Mapped[str] = mapped_column(String(300))
    source_text: Mapped[str] = mapped_column(Text)
    is_latest: Mapped[bool] = mapped_column(default=True)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __table_args__ = (
        Index("ix_instance_submitter", "submitter_id", "created_at"),
        Index("ix_instance_status_key", "status", "process_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))
    process_key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    subject_kind: Mapped[str] = mapped_column(String(20), default="none")
    subject_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | approved | rejected | withdrawn | void
    current_step: Mapped[str] = mapped_column(String(64))
    round: Mapped[int] = mapped_column(default=1)  # +1 each time a step is entered
    form_data: Mapped[dict] = mapped_column(default=dict)
    submitter_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    submitter_department: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    parent_round: Mapped[int | None] = mapped_column()
    version: Mapped[int] = mapped_column(default=1)
    trail_head: Mapped[str] = mapped_column(String(64), default="")
    trail_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_instance_round", "instance_id", "round"),
        # The inbox (services/queries.py), newest first = ORDER BY id DESC with keyset pages:
        # my open tasks — assigned to me, or delegated to me (the OR needs both indexes, else
        # PostgreSQL walks every open task) — and department queues of unclaimed tasks, keyed by
        # id so a page is a backward scan of 50 entries however long the queue (migration 0007).
        Index("ix_task_assignee_open", "assignee_id", "id",
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
        Index("ix_task_delegate_open", "delegate_id",
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
        Index("ix_task_queue_open", "department", "role", "id",
              postgresql_where=text("status = 'open' AND assignee_id IS NULL"),
              sqlite_where=text("status = 'open' AND assignee_id IS NULL")),
        Index("ix_task_actor_done", "acted_by_id", "completed_at"),
        Index("ix_task_due_open", "due_at", postgresql_where=text("status = 'open'"),
              sqlite_where=text("status = 'open'")),
        Index("ix_task_reminder_open", "next_reminder_at", postgresql_where=text("status = 'open'"),
              sqlite_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(64))
    round: Mapped[int] = mapped_column()
    seq: Mapped[int] = mapped_column(default=0)
    origin: Mapped[str] = mapped_column(String(10), default="route")  # route | added | start
    status: Mapped[str] = mapped_column(String(10))  # open | waiting | done | cancelled
    department: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(64))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    delegate_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decision: Mapped[str | None] = mapped_column(String(64))
    opinion: Mapped[str | None] = mapped_column(Text)
    acted_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()
    # The clock (issue: deadlines). Working days are stored so due_at can be recomputed when a
    # calendar year is loaded; `due_provisional` marks a due date computed with weekends only.
    deadline_days: Mapped[int | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    due_provisional: Mapped[bool] = mapped_column(default=False)
    paused_at: Mapped[datetime | None] = mapped_column()
    next_reminder_at: Mapped[datetime | None] = mapped_column()
    escalation_level: Mapped[int] = mapped_column(default=0)


class CarbonCopy(Base):
    """抄送: the instance is shown to a user read-only in their CC tab."""

    __tablename__ = "carbon_copy"
    __table_args__ = (UniqueConstraint("instance_id", "user_id", name="uq_cc_instance_user"),
                      Index("ix_cc_user", "user_id", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    read_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
