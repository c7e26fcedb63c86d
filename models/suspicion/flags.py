"""Raising a flag: one open flag per pattern, joined by later ratings of the same pattern, never duplicated.

A pattern is (detector, subject). While its flag is open, ratings the detector finds again join it.
Once a person has decided it, the ratings it lists are settled for that pattern; a new flag opens
only when as many *new* ratings make the pattern again as it takes to raise one. The constraint on
`open_key` makes two concurrent detections of one pattern end in one flag: the loser retries and joins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import utcnow
from models.organisation import Unit
from models.suspicion.records import Detector, RatingFingerprint, SuspicionFlag, SuspicionFlagRating

log = logging.getLogger(__name__)

_ATTEMPTS = 3


@dataclass(frozen=True)
class Finding:
    """What a detector saw: the ratings making a pattern, and why, in words with the numbers."""

    detector: Detector
    subject: str
    rating_ids: Sequence[int]
    reason: str
    min_new: int  # unflagged ratings needed to open a flag (the detector's threshold)


class Outcome(StrEnum):
    OPENED = "opened"
    JOINED = "joined"
    UNCHANGED = "unchanged"


async def raise_flag(session: AsyncSession, finding: Finding) -> Outcome:
    """Open the pattern's flag or add the new ratings to it; commits. Retries a lost race, then joins."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            outcome = await _apply(session, finding)
            await session.commit()
            return outcome
        except (IntegrityError, OperationalError):
            # Another detection of the same pattern committed first (or SQLite's writer lock was taken).
            await session.rollback()
            if attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _apply(session: AsyncSession, finding: Finding) -> Outcome:
    open_key = f"{finding.detector.value}:{finding.subject}"
    flag = (
        await session.exec(select(SuspicionFlag).where(SuspicionFlag.open_key == open_key).with_for_update())
    ).first()
    settled = set(
        (
            await session.exec(
                select(SuspicionFlagRating.rating_id)
                .join(SuspicionFlag, col(SuspicionFlag.id) == SuspicionFlagRating.flag_id)
                .where(SuspicionFlag.detector == finding.detector, SuspicionFlag.subject == finding.subject)
                .where(col(SuspicionFlagRating.rating_id).in_(finding.rating_ids))
            )
        ).all()
    )
    new = sorted(set(finding.rating_ids) - settled)
    if not new or (flag is None and len(new) < finding.min_new):
        return Outcome.UNCHANGED
    now = utcnow()
    outcome = Outcome.JOINED
    if flag is None:
        outcome = Outcome.OPENED
        flag = SuspicionFlag(
            detector=finding.detector,
            subject=finding.subject,
            open_key=open_key,
            reason=finding.reason,
            first_at=now,
            last_at=now,
            created_at=now,
        )
        session.add(flag)
        await session.flush()
    assert flag.id is not None
    session.add_all(SuspicionFlagRating(flag_id=flag.id, rating_id=rating_id) for rating_id in new)
    await session.flush()
    count, first_at, last_at = (
        await session.exec(
            select(func.count(), func.min(RatingFingerprint.submitted_at), func.max(RatingFingerprint.submitted_at))
            .select_from(SuspicionFlagRating)
            .join(RatingFingerprint, col(RatingFingerprint.rating_id) == SuspicionFlagRating.rating_id)
            .where(SuspicionFlagRating.flag_id == flag.id)
        )
    ).one()
    flag.rating_count, flag.first_at, flag.last_at = count, first_at or now, last_at or now
    flag.unit_id = await _covering_unit(session, flag.id)
    flag.reason = finding.reason[:1000]
    flag.updated_at = now
    session.add(flag)
    return outcome


async def _covering_unit(session: AsyncSession, flag_id: int) -> int | None:
    """The deepest unit that is, or is above, every rating's unit: its supervisors see all the ratings."""
    units = set(
        (
            await session.exec(
                select(RatingFingerprint.unit_id)
                .join(SuspicionFlagRating, col(SuspicionFlagRating.rating_id) == RatingFingerprint.rating_id)
                .where(SuspicionFlagRating.flag_id == flag_id)
                .distinct()
            )
        ).all()
    )
    parents = dict((await session.exec(select(Unit.id, Unit.parent_id))).all())
    common: list[int] | None = None
    for unit_id in units:
        chain = _chain(unit_id, parents)  # the unit first, the root last
        common = chain if common is None else [u for u in chain if u in set(common)]
    return common[0] if common else None


def _chain(unit_id: int, parents: dict[int | None, int | None]) -> list[int]:
    chain: list[int] = []
    current: int | None = unit_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return chain
