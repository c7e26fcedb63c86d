"""The retention job's activities: one batch of ratings anonymised, one batch of records' contacts erased.

Each batch is one transaction — the rows, their case texts, their keyed hashes and the batch's one
audit row commit together — so a worker killed mid-batch leaves nothing half anonymised: the retried
batch, or the next run, finds the same rows untouched and does them once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.faults import crash_point
from config import Settings
from models.db import Database
from models.retention import Periods, next_due_ratings, next_due_records
from models.retention_anonymise import anonymise_ratings, audit_batch, erase_applicant_contacts
from models.retention_io import RetentionActivity, RetentionBatchInput, RetentionBatchResult

_ATTEMPTS = 5  # a concurrent writer of the same row (SQLite has no SKIP LOCKED): roll back, look again


class RetentionActivities:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._periods = Periods.of(settings)

    @activity.defn(name=RetentionActivity.RATINGS)
    async def ratings(self, inp: RetentionBatchInput) -> RetentionBatchResult:
        """Anonymise the next ratings due after the cursor, with their cases' texts; one audit row."""

        async def stage(session: AsyncSession) -> RetentionBatchResult:
            ids = await next_due_ratings(session, inp.now, self._periods, inp.after_id, inp.limit)
            if not ids:
                return RetentionBatchResult(last_id=None, scanned=0)
            cases = await anonymise_ratings(session, ids, inp.now)
            audit_batch(session, "retention.anonymise", "rating", ids, cases=cases)
            return RetentionBatchResult(last_id=ids[-1], scanned=len(ids), cases=cases)

        return await self._in_one_transaction("ratings", stage)

    @activity.defn(name=RetentionActivity.RECORDS)
    async def records(self, inp: RetentionBatchInput) -> RetentionBatchResult:
        """Erase the applicant contact of the next records due after the cursor; one audit row."""

        async def stage(session: AsyncSession) -> RetentionBatchResult:
            ids = await next_due_records(session, inp.now, self._periods, inp.after_id, inp.limit)
            if not ids:
                return RetentionBatchResult(last_id=None, scanned=0)
            await erase_applicant_contacts(session, ids)
            audit_batch(session, "retention.erase_contact", "servicerecord", ids)
            return RetentionBatchResult(last_id=ids[-1], scanned=len(ids))

        return await self._in_one_transaction("records", stage)

    async def _in_one_transaction(
        self, kind: str, stage: Callable[[AsyncSession], Awaitable[RetentionBatchResult]]
    ) -> RetentionBatchResult:
        for attempt in range(_ATTEMPTS):
            async with self._db.session() as session:
                try:
                    result = await stage(session)
                    crash_point(f"retention.{kind}.before_commit")
                    await session.commit()
                except (IntegrityError, OperationalError):
                    await session.rollback()
                    if attempt == _ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
            crash_point(f"retention.{kind}.after_commit")
            return result
        raise AssertionError("unreachable")
