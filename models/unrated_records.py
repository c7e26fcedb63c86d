"""Finding unrated records for the sweeps (邀评, 默认评价): by policy, in batches, each batch locked for its writer.

Units run under different profiles, so each profile's clocks give a range of completion times
(Clocks.started_before turns "the clock has run out" into "completed before B", exactly, working
days included). A batch is the next `limit` records after a cursor (keyset pagination by id) that
match any profile's range and have no rating at all. On PostgreSQL the rows are locked `FOR UPDATE
SKIP LOCKED`, so two sweeps at once take different records; SQLite has one writer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, exists, false, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.organisation import Region, Unit
from models.policy import PinnedPolicy
from models.policy_store import DEFAULT_POLICY, latest_policy
from models.ratings import Rating
from models.services import ServiceRecord


@dataclass(frozen=True)
class PolicyGroup:
    """The units that run under one profile version (their region's, or the national default)."""

    pinned: PinnedPolicy
    unit_ids: tuple[int, ...]


@dataclass(frozen=True)
class CompletedBetween:
    """Records of these units completed in [since, before): the range a profile's clocks give."""

    unit_ids: tuple[int, ...]
    since: datetime | None
    before: datetime


@dataclass(frozen=True)
class UnratedRecord:
    """What a sweep needs of a record: never its applicant's contact, only whether there is one."""

    id: int
    unit_id: int
    completed_at: datetime
    created_at: datetime
    has_phone: bool
    has_email: bool


async def policy_groups(session: AsyncSession) -> list[PolicyGroup]:
    """Every unit by the profile it runs under now, as policy_for_unit decides it for one unit."""
    rows = (
        await session.exec(select(Unit.id, Region.policy_code).join(Region, col(Region.id) == Unit.region_id))
    ).all()
    pinned_by_code: dict[str, PinnedPolicy] = {}
    units: dict[tuple[str, int], list[int]] = {}
    for unit_id, code in rows:
        if code not in pinned_by_code:
            pinned = await latest_policy(session, code) or await latest_policy(session, DEFAULT_POLICY)
            if pinned is None:
                raise RuntimeError("no policy profile is loaded; run the policy sync (make run does it at start)")
            pinned_by_code[code] = pinned
        pinned = pinned_by_code[code]
        assert unit_id is not None
        units.setdefault((pinned.code, pinned.version), []).append(unit_id)
    by_version = {(p.code, p.version): p for p in pinned_by_code.values()}
    return [PolicyGroup(by_version[key], tuple(ids)) for key, ids in units.items()]


async def next_unrated(
    session: AsyncSession,
    ranges: Sequence[CompletedBetween],
    after_id: int,
    limit: int,
    *conditions: Any,
) -> list[UnratedRecord]:
    """The next `limit` unrated records after `after_id` in any of the ranges (and the conditions), locked.

    The lock holds until the caller commits or rolls back; rows another sweep holds are skipped.
    """
    matches = [
        and_(
            col(ServiceRecord.unit_id).in_(r.unit_ids),
            col(ServiceRecord.completed_at) < r.before,
            *([col(ServiceRecord.completed_at) >= r.since] if r.since is not None else []),
        )
        for r in ranges
        if r.unit_ids and (r.since is None or r.since < r.before)
    ]
    if not matches:
        return []
    query = (
        sa.select(
            col(ServiceRecord.id),
            col(ServiceRecord.unit_id),
            col(ServiceRecord.completed_at),
            col(ServiceRecord.created_at),
            col(ServiceRecord.applicant_phone).is_not(None),
            col(ServiceRecord.applicant_email).is_not(None),
        )
        .where(
            col(ServiceRecord.id) > after_id,
            or_(false(), *matches),
            ~exists().where(col(Rating.record_id) == ServiceRecord.id),
            *conditions,
        )
        .order_by(col(ServiceRecord.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=ServiceRecord)
    )
    rows = (await (await session.connection()).execute(query)).all()
    return [UnratedRecord(*row) for row in rows]  # type: ignore[arg-type]  # a primary key is never None
