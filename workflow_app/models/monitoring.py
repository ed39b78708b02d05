"""Recorded park warnings (低效载体分级预警): one row per park and period that reached a grade.

The unique (park, period) pair is what makes an evaluation idempotent, also under concurrency: a
second evaluator of the same period fails on the insert and rolls back. `rules_hash` names the
version of `process_defs/rules/warning_rules.yaml` the warning was raised under, and `metrics`
keeps the figures that were compared, so an auditor can re-check a warning years later.

A warning is closed when a later period of the same park is evaluated: `recovered` when that
period's grade is lower, `superseded` when the later period carries the warning on (its own row
is then the open one), `revised` when corrected figures for the same period no longer warn.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base
from .park import Park

GRADES = ("yellow", "orange", "red")
WARNING_STATUSES = ("open", "closed")
CLOSE_REASONS = ("recovered", "superseded", "revised")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ParkWarning(Base):
    __tablename__ = "park_warning"
    __table_args__ = (
        UniqueConstraint("park_id", "period", name="uq_park_warning_park_period"),
        CheckConstraint(_in("grade", GRADES), name="grade"),
        CheckConstraint(_in("status", WARNING_STATUSES), name="status"),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_at_matches"),
        CheckConstraint("closed_reason IS NULL OR " + _in("closed_reason", CLOSE_REASONS),
                        name="closed_reason"),
        # dashboard: open warnings by grade; a park's history newest first
        Index("ix_park_warning_status_grade", "status", "grade"),
        Index("ix_park_warning_park_end", "park_id", "period_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[int] = mapped_column(ForeignKey("park.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))  # "2026Q3" or "2026-10", as ParkIndicator
    period_end: Mapped[date] = mapped_column(Date)
    grade: Mapped[str] = mapped_column(String(10))  # yellow | orange | red
    rule_ids: Mapped[list] = mapped_column(default=list)  # the rules that fired, most severe first
    reasons: Mapped[list] = mapped_column(default=list)  # [{rule, indicator, grade, zh, en}]
    metrics: Mapped[dict] = mapped_column(default=dict)  # the compared figures (decimals as text)
    rules_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the rules file
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | closed
    rectification_instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_instance.id", ondelete="SET NULL"), index=True)
    raised_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_reason: Mapped[str | None] = mapped_column(String(12))  # recovered | superseded | revised
    closed_by_period: Mapped[str | None] = mapped_column(String(7))  # the period that closed it

    park: Mapped[Park] = relationship()
