"""Unrated records for the rating sweep's tests, and the sweep run the way its workflow runs it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlmodel import select

from activities.notice_sender import NoticeSender
from activities.rating_sweep import RatingSweepActivities
from config import Settings
from models.db import Database
from models.deadlines import CHINA_TZ
from models.rating_sweep_io import SweepActivity, SweepBatchInput, SweepBatchResult
from models.services import ServiceRecord
from runtime.notice_relay import NoticeRelay


async def add_unrated(
    db: Database,
    numbers: list[str],
    completed_at: datetime,
    *,
    phone: str | None = None,
    email: str | None = None,
    created_at: datetime | None = None,
    like: str = "DEMO-0002",
) -> list[int]:
    """Records shaped like `like` (unit, item), completed and registered when said, with the applicant's contact."""
    async with db.session() as session:
        model = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == like))).one()
        fields = model.model_dump(
            exclude={"id", "record_no", "applicant_phone_check", "completed_at", "created_at", "invited_at"}
        )
        rows = [
            ServiceRecord(
                record_no=number,
                **fields | {"applicant_phone": phone, "applicant_email": email},
                completed_at=completed_at,
                created_at=created_at or completed_at,
            )
            for number in numbers
        ]
        session.add_all(rows)
        await session.commit()
        return [row.id for row in rows if row.id is not None]


async def sweep(
    activities: RatingSweepActivities, kind: SweepActivity, now: datetime, batch_size: int
) -> list[SweepBatchResult]:
    """One kind of batch, until none is left, as workflows/rating_sweep.py calls them."""
    call = activities.invite if kind == SweepActivity.INVITE else activities.default
    batches, after_id = [], 0
    while True:
        batch = await call(SweepBatchInput(now=now, after_id=after_id, limit=batch_size))
        batches.append(batch)
        if batch.last_id is None or batch.scanned < batch_size:
            return batches
        after_id = batch.last_id


async def drain(sender: NoticeSender, settings: Settings) -> int:
    """Send every notice due now, as the worker's notice relay does."""
    return await NoticeRelay(sender, settings, asyncio.Event()).drain_once()


def completed_recently(minutes: int = 0) -> str:
    """A completion time three hours ago plus `minutes` (China time, ISO): inside every profile's rating window.

    A fixed date would close its 补充评价 window a few days after it was written (docs/intake.md).
    """
    return (datetime.now(CHINA_TZ) - timedelta(hours=3) + timedelta(minutes=minutes)).isoformat(timespec="seconds")
