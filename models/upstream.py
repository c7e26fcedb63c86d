"""Upstream reporting (数据上报): one push row per rating and per finished case, sent by the worker's relay.

A push row is written in the transaction that creates what it reports — the rating at intake, the
closing event of a case in the record activity — so a report exists exactly when its subject does.
The relay (runtime/upstream_relay.py, activities/upstream_sender.py) claims it for a lease, POSTs it
to the platform with the row's `push_key` as the Idempotency-Key, and records the outcome. The
fields the platform gets are built when the push is sent (models/upstream_fields.py), so a retry
after fixing the data sends the fixed data under the same key. No rater contact is ever stored here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import UTCDateTime, str_enum, utcnow
from models.ratings import Rating


class PushKind(StrEnum):
    RATING = "rating"  # 评价数据 (GB/T 39046-2020 表9)
    CASE_RESULT = "case_result"  # 差评整改结果: a case closed or not adopted


class PushStatus(StrEnum):
    PENDING = "pending"  # waiting for its first attempt or its next one (next_attempt_at)
    SENDING = "sending"  # claimed by a relay until claimed_until
    DELIVERED = "delivered"  # the platform answered 2xx
    DEAD = "dead"  # a permanent refusal, or every attempt failed: waits for an administrator (last_error)
    SKIPPED = "skipped"  # reporting was off (no upstream URL) when it was written


PUSH_STATUS_LABELS_ZH = {
    PushStatus.PENDING: "待上报",
    PushStatus.SENDING: "上报中",
    PushStatus.DELIVERED: "已上报",
    PushStatus.DEAD: "上报失败",
    PushStatus.SKIPPED: "未上报（上报未启用）",
}
PUSH_KIND_LABELS_ZH = {PushKind.RATING: "评价", PushKind.CASE_RESULT: "差评整改结果"}


class UpstreamPush(SQLModel, table=True):
    """One report to the upstream platform. `subject_id` is the rating's id or the case's id, by `kind`."""

    __table_args__ = (
        UniqueConstraint("kind", "subject_id", name="uq_upstreampush_kind_subject"),
        Index("ix_upstreampush_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    push_key: str = Field(max_length=36, unique=True, description="the Idempotency-Key the platform sees")
    kind: PushKind = Field(sa_type=str_enum(PushKind))
    subject_id: int
    status: PushStatus = Field(sa_type=str_enum(PushStatus))
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=500, description="status and body excerpt, or the exception type")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UpstreamPushRead(BaseModel):
    id: int
    push_key: str
    kind: PushKind
    subject_id: int
    status: PushStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, push: UpstreamPush) -> UpstreamPushRead:
        assert push.id is not None
        return cls.model_validate(push, from_attributes=True)


def _push(kind: PushKind, subject_id: int, reporting_on: bool) -> UpstreamPush:
    now = utcnow()
    return UpstreamPush(
        push_key=str(uuid.uuid4()),
        kind=kind,
        subject_id=subject_id,
        status=PushStatus.PENDING if reporting_on else PushStatus.SKIPPED,
        next_attempt_at=now if reporting_on else None,
        last_error="" if reporting_on else "上报未启用（未设置 HCP_UPSTREAM_URL）",
        created_at=now,
    )


def enqueue_rating_pushes(session: AsyncSession, ratings: Sequence[Rating], reporting_on: bool) -> None:
    """Stage one push per rating, to commit with the ratings. Every path that writes ratings calls this.

    The ratings must be flushed (they need their ids). With reporting off the rows are written as
    skipped: a record of what the platform never got, which an administrator can push later.
    """
    for rating in ratings:
        assert rating.id is not None, "flush the ratings before enqueueing their pushes"
        session.add(_push(PushKind.RATING, rating.id, reporting_on))


async def enqueue_case_result(session: AsyncSession, case_id: int, reporting_on: bool) -> bool:
    """Stage the push of a finished case's result, once per case. False if the case has one already."""
    existing = await session.exec(
        select(UpstreamPush.id).where(
            col(UpstreamPush.kind) == PushKind.CASE_RESULT, col(UpstreamPush.subject_id) == case_id
        )
    )
    if existing.first() is not None:
        return False
    session.add(_push(PushKind.CASE_RESULT, case_id, reporting_on))
    return True
