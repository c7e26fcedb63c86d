"""Retention of raters' personal data (个人信息保存期限): which ratings and records are due to be anonymised.

A rating is due when its case (or, for a copy of a bundle rating, its lead's case) has been closed
(办结 or 不予采纳) for `retention_days`, or, with no case, when it was submitted `retention_uncased_days`
ago; and no rating of the same service record has a case that must still be kept (open, its appeal or
review pending, or closed too recently), so a follow-up or a stage rating never loses its rater while
another case about the same transaction goes on. A record's applicant contact is due
`retention_uncased_days` after its rating window (补充评价) closed, under the same guard.

Batches are the next `limit` due rows after a keyset cursor, locked `FOR UPDATE SKIP LOCKED` on
PostgreSQL (two runs at once take different rows; SQLite has one writer). docs/retention.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, exists, false, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from config import Settings
from models.calendar import load_calendar
from models.case.records import Case
from models.case.vocabulary import TERMINAL_STAGES
from models.rating_timing import Clocks
from models.ratings import Rating
from models.services import ServiceRecord
from models.unrated_records import policy_groups


@dataclass(frozen=True)
class Periods:
    """How long personal data is kept: after a case closed, and after a rating without a case."""

    after_case: timedelta
    uncased: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Periods:
        return cls(timedelta(days=settings.retention_days), timedelta(days=settings.retention_uncased_days))


def _closed_at() -> Any:
    # A terminal case written before closed_at was kept has its last update as its closing time.
    return func.coalesce(col(Case.closed_at), col(Case.updated_at))


def _kept_case_on_record(record_id: Any, case_cutoff: datetime) -> Any:
    """Some rating of this record has a case that must be kept: open, or closed on or after the cutoff."""
    other, other_case = aliased(Rating), aliased(Case)
    return (
        exists()
        .where(
            col(other.record_id) == record_id,
            col(other_case.rating_id) == func.coalesce(col(other.lead_rating_id), col(other.id)),
            or_(
                col(other_case.stage).not_in(TERMINAL_STAGES),
                func.coalesce(col(other_case.closed_at), col(other_case.updated_at)) >= case_cutoff,
            ),
        )
        .correlate_except(other, other_case)
    )


def due_ratings_query(now: datetime, periods: Periods) -> sa.Select[Any]:
    """Ids of the ratings due to be anonymised at `now`, by id (the caller adds cursor, limit and lock)."""
    case_cutoff, rating_cutoff = now - periods.after_case, now - periods.uncased
    owner = func.coalesce(col(Rating.lead_rating_id), col(Rating.id))
    closed_long_ago = (
        exists()
        .where(
            col(Case.rating_id) == owner,
            col(Case.stage).in_(TERMINAL_STAGES),
            _closed_at() < case_cutoff,
        )
        .correlate(Rating)
    )
    no_case = ~exists().where(col(Case.rating_id) == owner).correlate(Rating)
    return (
        sa.select(col(Rating.id))
        .where(
            col(Rating.anonymised_at).is_(None),
            or_(closed_long_ago, and_(no_case, col(Rating.submitted_at) < rating_cutoff)),
            ~_kept_case_on_record(col(Rating.record_id), case_cutoff),
        )
        .order_by(col(Rating.id))
    )


async def next_due_ratings(
    session: AsyncSession, now: datetime, periods: Periods, after_id: int, limit: int
) -> list[int]:
    """The next `limit` due ratings after `after_id`, locked until the caller commits; locked ones are skipped."""
    query = (
        due_ratings_query(now, periods)
        .where(col(Rating.id) > after_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Rating)
    )
    return [row[0] for row in (await (await session.connection()).execute(query)).all()]


async def _record_windows_closed(session: AsyncSession, now: datetime, periods: Periods) -> Any:
    """Records whose rating window closed `periods.uncased` before `now`, under each unit's profile."""
    clocks = Clocks(await load_calendar(session))
    moment = now - periods.uncased
    matches = []
    for group in await policy_groups(session):
        rating = group.pinned.profile.rating
        # The later of the 补充评价 window and a follow-up's (counted from completion here: never earlier).
        before = min(
            clocks.started_before(rating.supplementary, moment), clocks.started_before(rating.follow_up_within, moment)
        )
        matches.append(and_(col(ServiceRecord.unit_id).in_(group.unit_ids), col(ServiceRecord.completed_at) < before))
    return or_(false(), *matches)


async def due_records_query(session: AsyncSession, now: datetime, periods: Periods) -> sa.Select[Any]:
    """Ids of the records whose applicant contact is due to be erased at `now`, by id."""
    return (
        sa.select(col(ServiceRecord.id))
        .where(
            or_(
                col(ServiceRecord.applicant_phone).is_not(None),
                col(ServiceRecord.applicant_email).is_not(None),
                col(ServiceRecord.applicant_phone_check).is_not(None),
            ),
            await _record_windows_closed(session, now, periods),
            ~_kept_case_on_record(col(ServiceRecord.id), now - periods.after_case),
        )
        .order_by(col(ServiceRecord.id))
    )


async def next_due_records(
    session: AsyncSession, now: datetime, periods: Periods, after_id: int, limit: int
) -> list[int]:
    """The next `limit` records due after `after_id`, locked until the caller commits."""
    query = (
        (await due_records_query(session, now, periods))
        .where(col(ServiceRecord.id) > after_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=ServiceRecord)
    )
    return [row[0] for row in (await (await session.connection()).execute(query)).all()]


@dataclass(frozen=True)
class DueCounts:
    """What a run at `now` would anonymise (the command's --dry-run)."""

    ratings: int
    records: int


async def count_due(session: AsyncSession, now: datetime, periods: Periods) -> DueCounts:
    ratings = due_ratings_query(now, periods).order_by(None).subquery()
    records = (await due_records_query(session, now, periods)).order_by(None).subquery()
    connection = await session.connection()
    return DueCounts(
        ratings=(await connection.execute(sa.select(func.count()).select_from(ratings))).scalar_one(),
        records=(await connection.execute(sa.select(func.count()).select_from(records))).scalar_one(),
    )
