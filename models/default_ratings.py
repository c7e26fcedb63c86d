"""Default ratings (默认评价): where a profile says so, an unrated transaction is rated for its silent rater.

A record gets one when its profile's `default_after` has passed since completion AND its 补充评价
window has closed (models/rating_timing.py default_due_at): the system rates only once the rater no
longer can, so a default never stands in the way of the rater's own rating, and never has to be
replaced by one. The rating is the item's, at the profile's `default_level` (never a bad level:
models/policy.py refuses one), channel `system_default` (系统默认评价), source system
`system-default`, made at the moment it fell due. It opens no case, has no rater and no suspicion
fingerprint (the system is not a rater to watch), and is reported upstream like every rating.
Every "active rating" (主动评价) figure leaves it out: ACTIVE below.

Not defaulted: a record registered after its default moment (it reached this system after its
rating period; the source system's own history, with its own default ratings, is imported), and one
whose default moment passed more than the sweep's lookback ago (HCP_RATING_DEFAULT_LOOKBACK_DAYS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models.calendar import load_calendar
from models.policy import RatingWindows
from models.rating_timing import Clocks, default_due_at
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget, ServiceStage
from models.unrated_records import CompletedBetween, next_unrated, policy_groups
from models.upstream import enqueue_rating_pushes

DEFAULT_SOURCE_SYSTEM = "system-default"
# The condition every "active rating" (主动评价) figure adds: the rater rated, not the system for them.
ACTIVE = col(Rating.channel) != RatingChannel.SYSTEM_DEFAULT


@dataclass(frozen=True)
class DefaultBatch:
    last_id: int | None  # the cursor for the next batch; None: nothing was scanned
    scanned: int
    written: int


def _due_range(windows: RatingWindows, clocks: Clocks, now: datetime) -> datetime:
    """Completed before this, a record's default moment has passed at `now` (both of its clocks have run out)."""
    assert windows.default_after is not None
    return min(clocks.started_before(windows.default_after, now), clocks.started_before(windows.supplementary, now))


async def stage_default_ratings(
    session: AsyncSession, now: datetime, after_id: int, limit: int, lookback: timedelta, upstream_on: bool
) -> DefaultBatch:
    """Write the default rating of the next `limit` records after `after_id` due one at `now`; the caller commits.

    Raises IntegrityError when a rating of one of them was written meanwhile (the unique rating per
    record, target, stage and follow-up): roll back and call again, and that record is rated.
    """
    clocks = Clocks(await load_calendar(session))
    groups = [group for group in await policy_groups(session) if group.pinned.profile.rating.default_after]
    ranges = [
        CompletedBetween(
            group.unit_ids,
            since=_due_range(group.pinned.profile.rating, clocks, now - lookback),
            before=_due_range(group.pinned.profile.rating, clocks, now),
        )
        for group in groups
    ]
    windows = {unit_id: group.pinned.profile.rating for group in groups for unit_id in group.unit_ids}
    found = await next_unrated(session, ranges, after_id, limit)
    if not found:
        return DefaultBatch(None, 0, 0)
    rows = []
    for record in found:
        rating = windows[record.unit_id]
        due = default_due_at(record.completed_at, rating, clocks)
        assert due is not None and rating.default_level is not None
        if record.created_at >= due:  # registered after its rating period: not this system's to default
            continue
        rows.append(
            Rating(
                record_id=record.id,
                level=RatingLevel(rating.default_level),
                channel=RatingChannel.SYSTEM_DEFAULT,
                target=RatingTarget.ITEM,
                stage=ServiceStage.WHOLE,
                follow_up=0,
                answers={},
                comment="",
                real_name=False,
                is_bad=False,
                adopted=True,
                source_system=DEFAULT_SOURCE_SYSTEM,
                submitted_at=due,
            )
        )
    if rows:
        session.add_all(rows)
        await session.flush()
        enqueue_rating_pushes(session, rows, upstream_on)  # the platform hears of it as 系统默认评价
    return DefaultBatch(found[-1].id, len(found), len(rows))
