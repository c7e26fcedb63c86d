"""The rating sweep's activities: one batch of default ratings, one batch of invitations, each one transaction.

A batch commits everything it writes at once (the ratings and their upstream pushes; the links, the
notices and `invited_at`), so a worker killed mid-batch leaves nothing half done: the retried batch,
or the next run, finds the same records untouched and does them once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.faults import crash_point
from config import Settings
from models.db import Database
from models.default_ratings import stage_default_ratings
from models.invitation_sweep import QuietHours, stage_invitations
from models.rating_sweep_io import SweepActivity, SweepBatchInput, SweepBatchResult

_ATTEMPTS = 5  # a concurrent writer of the same row (SQLite has no SKIP LOCKED): roll back, look again


class RatingSweepActivities:
    def __init__(self, db: Database, settings: Settings, notices_written: asyncio.Event) -> None:
        self._db = db
        self._settings = settings
        self._notices_written = notices_written
        self._quiet = QuietHours.parse(settings.rating_invitation_quiet_hours)

    @activity.defn(name=SweepActivity.INVITE)
    async def invite(self, inp: SweepBatchInput) -> SweepBatchResult:
        """Queue one invitation (SMS, else email) for each of the next unrated records due one."""

        async def stage(session: AsyncSession) -> SweepBatchResult:
            batch = await stage_invitations(session, inp.now, inp.after_id, inp.limit, self._quiet)
            return SweepBatchResult(
                last_id=batch.last_id, scanned=batch.scanned, written=batch.scanned, sms=batch.sms, email=batch.email
            )

        result = await self._in_one_transaction("invite", stage)
        if result.written:
            self._notices_written.set()  # wake this worker's notice relay
        return result

    @activity.defn(name=SweepActivity.DEFAULT)
    async def default(self, inp: SweepBatchInput) -> SweepBatchResult:
        """Write the default rating of each of the next unrated records whose default moment has passed."""
        lookback = timedelta(days=self._settings.rating_default_lookback_days)

        async def stage(session: AsyncSession) -> SweepBatchResult:
            batch = await stage_default_ratings(
                session, inp.now, inp.after_id, inp.limit, lookback, self._settings.upstream_enabled
            )
            return SweepBatchResult(last_id=batch.last_id, scanned=batch.scanned, written=batch.written)

        return await self._in_one_transaction("default", stage)

    async def _in_one_transaction(
        self, kind: str, stage: Callable[[AsyncSession], Awaitable[SweepBatchResult]]
    ) -> SweepBatchResult:
        for attempt in range(_ATTEMPTS):
            async with self._db.session() as session:
                try:
                    result = await stage(session)
                    crash_point(f"rating_sweep.{kind}.before_commit")
                    await session.commit()
                except (IntegrityError, OperationalError):
                    # Another sweep or a rater wrote first (or, on SQLite, committed since this one read):
                    # roll back and look again; the next look leaves that record out.
                    await session.rollback()
                    if attempt == _ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
            crash_point(f"rating_sweep.{kind}.after_commit")
            return result
        raise AssertionError("unreachable")
