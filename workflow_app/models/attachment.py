"""Files attached to an application's `attachment` fields, kept in the database.

One row per uploaded file: its bytes (`content`, deferred so listings never load them), the
sha256 that the form data refers to (`sha256:<hex>`, so the trail's form hash covers the file),
size, media type as we determined it (never the browser's word), the original file name, who
uploaded it, for which instance and field, and the trail event of the action that attached it.
Rows are written in the same transaction as that action.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Attachment(Base):
    __tablename__ = "attachment"
    __table_args__ = (Index("ix_attachment_instance", "instance_id", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column()
    media_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    trail_event_id: Mapped[int | None] = mapped_column(ForeignKey("trail_event.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
