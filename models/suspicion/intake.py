"""The intake's two calls: a fingerprint with each rating (same transaction), and the cheap checks after commit.

The fingerprint is written with the rating so the sweep can always see it. The checks run after the
commit, in their own small transactions, because a rating must stand whatever a detector does: a
check that fails is logged (ids and exception type only) and left to the sweep, which runs the same
patterns again. Only checks that are one indexed lookup on a key the new rating carries run here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.ratings import Rating, RatingLevel, RatingTarget
from models.services import ServiceRecord
from models.suspicion.aggregates import mismatch
from models.suspicion.flags import Finding, raise_flag
from models.suspicion.in_force import default_rules, unit_rules
from models.suspicion.keys import client_key, content_key, phone_key
from models.suspicion.patterns import COUNT_PATTERNS, find
from models.suspicion.records import RatingFingerprint
from models.suspicion.rules import SuspicionRules

log = logging.getLogger(__name__)

# The fingerprints staged in a session, kept for the checks after its commit: the rows are in memory
# (sessions keep objects after commit), so the checks need not read them back.
_STAGED = "suspicion.staged_fingerprints"

# 好评: the top two of the five levels, as the bottom two are 差评 (国办发〔2019〕51号 三(一)).
GOOD_LEVELS = frozenset({RatingLevel.VERY_SATISFIED, RatingLevel.SATISFIED})


def fingerprint(
    session: AsyncSession, signing_key: str, rated: Sequence[tuple[ServiceRecord, Rating]], client: str | None
) -> None:
    """Stage each new rating's fingerprint in the intake's transaction (the ratings are flushed: ids known)."""
    staged: dict[int, tuple[RatingFingerprint, ServiceRecord]] = session.info.setdefault(_STAGED, {})
    for record, rating in rated:
        assert rating.id is not None and record.id is not None
        content, chars = content_key(signing_key, rating.comment, rating.answers)
        row = RatingFingerprint(
            rating_id=rating.id,
            record_id=record.id,
            unit_id=record.unit_id,
            staff_id=record.staff_id if rating.target == RatingTarget.STAFF else None,
            good=rating.level in GOOD_LEVELS,
            bad=rating.is_bad,
            phone_key=phone_key(signing_key, rating.rater_phone),
            client_key=client_key(signing_key, client),
            content_key=content,
            content_chars=chars,
            source_system=rating.source_system,
            channel=rating.channel,
            offset_seconds=int((rating.submitted_at - record.completed_at).total_seconds()),
            submitted_at=rating.submitted_at,
        )
        session.add(row)
        staged[rating.id] = (row, record)


async def check_new_ratings(
    session: AsyncSession, rating_ids: Sequence[int], unit: SuspicionRules | None = None
) -> None:
    """After the intake's commit: flag what the new ratings complete. Never raises; the sweep covers a failure.

    `unit`: the thresholds of the ratings' unit, when the caller has its profile at hand (intake has).
    """
    try:
        for finding in await _findings(session, rating_ids, unit):
            await raise_flag(session, finding)
    except Exception as exc:  # noqa: BLE001 - committed ratings stand; the sweep runs these patterns again
        log.warning("suspicion checks of ratings %s failed after commit (%s); left to the sweep", list(rating_ids), type(exc).__name__)  # fmt: skip
        with contextlib.suppress(Exception):
            await session.rollback()


async def _fingerprints(
    session: AsyncSession, rating_ids: Sequence[int]
) -> list[tuple[RatingFingerprint, ServiceRecord]]:
    """The ratings' fingerprints: as staged in this session when they were, else read back."""
    staged: dict[int, tuple[RatingFingerprint, ServiceRecord]] = session.info.pop(_STAGED, {})
    if all(rating_id in staged for rating_id in rating_ids):
        return [staged[rating_id] for rating_id in sorted(rating_ids)]
    rows = await session.exec(
        select(RatingFingerprint, ServiceRecord)
        .join(ServiceRecord, col(ServiceRecord.id) == RatingFingerprint.record_id)
        .where(col(RatingFingerprint.rating_id).in_(rating_ids))
        .order_by(col(RatingFingerprint.rating_id))
    )
    return [(fp, record) for fp, record in rows.all()]


async def _findings(session: AsyncSession, rating_ids: Sequence[int], known: SuspicionRules | None) -> list[Finding]:
    across: SuspicionRules | None = None  # read only when a pattern across units has a key to look up
    findings: list[Finding] = []
    for fp, record in await _fingerprints(session, rating_ids):
        unit = known or await unit_rules(session, fp.unit_id)
        for pattern in COUNT_PATTERNS:
            values = pattern.values_of(fp)
            if values is None:
                continue
            if pattern.across_units and across is None:
                across = await default_rules(session)
            rules = across if pattern.across_units and across is not None else unit
            if not pattern.applies(fp, rules):
                continue
            since = fp.submitted_at - pattern.rule(rules).window
            if (found := await find(session, pattern, rules, values, since, fp.submitted_at)) is not None:
                findings.append(found)
        if (wrong := mismatch(unit, [fp.rating_id], fp.source_system, fp.channel, record)) is not None:
            findings.append(wrong)
    return findings
