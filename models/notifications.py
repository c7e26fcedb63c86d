"""Notices (通知): every email and SMS about a case, recorded as an intent before anything is sent.

A notice row is written in the same transaction as the timeline event that causes it (the
record_case_event activity), so a step and its notices can never disagree. The worker's notice
relay (runtime/notice_relay.py) then claims pending rows, sends them and marks them sent; a crash
at any point leaves the row to be claimed again once its lease runs out, and the retry sends the
same message under the same Message-ID (and the rater the same answer link).

The key names the case, the notice, the round, the deadline arm, the channel and the recipient, so
two cases never share a key and a retry never makes a second row. A rating invitation (评价邀请) is a
notice about a service record instead of a case (`record_id`, kind `rating_invitation`), keyed by
the record: one per record, ever (models/invitation_sweep.py).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.db import UTCDateTime, str_enum, utcnow


class NoticeStatus(StrEnum):
    PENDING = "pending"  # waiting to be sent (again, after next_attempt_at)
    SENDING = "sending"  # claimed by a relay until claimed_until
    SENT = "sent"
    FAILED = "failed"  # permanently refused (5xx from SMTP, a number that cannot take SMS): shown on the case
    HELD = "held"  # waiting at a database restore: may have gone out after the backup (runtime/reconcile.py)


class NoticeChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Notification(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("dedup_key", name="uq_notification_dedup"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)  # None: a rating invitation
    record_id: int | None = Field(default=None, foreign_key="servicerecord.id", index=True)
    # A root-cause rectification's notice to staff (根源整改, models/root_cause.py): no case, no record.
    root_cause_id: int | None = Field(default=None, foreign_key="rootcauserectification.id", index=True)
    kind: str = Field(max_length=50, description="feedback, reminder, escalation, ...")
    channel: NoticeChannel = Field(default=NoticeChannel.EMAIL, sa_type=str_enum(NoticeChannel))
    recipient_ref: str = Field(
        max_length=50, description='"rater", "user:<id>" or "applicant": never the address itself'
    )
    dedup_key: str = Field(max_length=200, description="case, notice, round, arm, channel, recipient")
    event_key: str = Field(default="", max_length=100, description="the timeline event that caused it")
    # What the template needs besides the case itself (stage, deadline, due time, rung, message). No PII.
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: NoticeStatus = Field(default=NoticeStatus.PENDING, index=True, sa_type=str_enum(NoticeStatus))
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=500, description="SMTP code or error class; never an address")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def message_id(self) -> str:
        """The Message-ID every attempt of this notice carries, so a resend is recognisably the same mail."""
        return "<" + "".join(ch if ch.isalnum() or ch in ".-" else "." for ch in self.dedup_key) + "@hcp>"


class NoticeView(BaseModel):
    """A notice as the case page shows it: who (by reference), how, and whether it went out."""

    kind: str
    channel: NoticeChannel
    recipient: str
    status: NoticeStatus
    attempts: int
    last_error: str
    created_at: datetime  # when it fell due
    held_until: datetime | None = None  # outside office hours: when it may go out
    sent_at: datetime | None
