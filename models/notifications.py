"""The sent-mail log: one row per (case, kind, round, recipient) makes every send idempotent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.db import UTCDateTime, utcnow


class Notification(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("dedup_key", name="uq_notification_dedup"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    kind: str = Field(max_length=50, description="feedback, callback_overdue, ...")
    channel: str = Field(default="email", max_length=20)
    recipient_ref: str = Field(max_length=50, description='"rater" or "user:<id>": never the address itself')
    dedup_key: str = Field(max_length=200)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
