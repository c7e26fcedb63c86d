"""Rating intake (评价接收): the one place a rating is written and, if it is bad, becomes a case.

The JSON API (api/ratings.py) and the rater's own pages (pages/citizen/) both call accept_ratings,
so a rating from a hall tablet and one from a QR code are written the same way: the ratings, each
bad one's case row and outbox entry, in one transaction. Each bad rating's workflow is then started
at once; if Temporal does not answer within a couple of seconds the ratings still stand and the
worker's outbox relay starts the cases later (docs/decisions/0001-case-row-written-with-the-rating.md).

Rating invitations (评价邀请, 一人一事一码) are in models/rating_invitations.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from config import Settings
from models.case.records import Case
from models.case.vocabulary import CaseWorkflowInput, workflow_id_for_rating
from models.db import utcnow
from models.outbox import START_CASE, OutboxEntry
from models.policy import PinnedPolicy
from models.policy_store import policy_for_unit
from models.rating_timing import judge_timing, opens_case
from models.ratings import (
    CoveredRating,
    Covers,
    Rating,
    RatingAccepted,
    RatingChannel,
    RatingCreate,
    RatingLevel,
    RatingTarget,
    ServiceStage,
)
from models.services import ServiceRecord
from models.suspicion import intake as suspicion
from models.upstream import enqueue_rating_pushes
from runtime.metrics import count_ratings_received
from runtime.temporal import TemporalConnection, start_case_workflow

log = logging.getLogger(__name__)


class IntakeRefused(Exception):
    """A rating the rules do not allow; nothing was written."""


class AlreadyRated(IntakeRefused):
    """The target of this record has a rating already (one rating per target per transaction)."""

    def __init__(self, target: RatingTarget) -> None:
        super().__init__(f"{target.value} already rated")
        self.target = target


class NoStaffToRate(IntakeRefused):
    """A staff rating of a record no staff member handled (online transactions rate the item only)."""


@dataclass(frozen=True)
class RatingFields:
    """What a rater says about one target, whichever channel brought it."""

    level: RatingLevel
    channel: RatingChannel
    target: RatingTarget = RatingTarget.ITEM
    answers: dict[str, Any] = field(default_factory=dict)
    comment: str = ""
    real_name: bool = False
    rater_name: str | None = None
    rater_phone: str | None = None
    rater_email: str | None = None
    submitted_at: datetime | None = None  # when the rater rated, if the source says (an import); else now
    # 0: the rating; n: the rater's n-th follow-up (追评). Asked for as 1; judge_timing gives the real number.
    follow_up: int = 0
    stage: ServiceStage = ServiceStage.WHOLE  # checked against the source by models/rating_coverage.py
    covers: Covers | None = None  # for a record of a bundle; None: the bundle's default

    @classmethod
    def of(cls, body: RatingCreate, submitted_at: datetime | None = None) -> RatingFields:
        """A body by level and channel name; one in a source's codes is read by models/rating_codes.py first."""
        assert body.level is not None and body.channel is not None, "read codes with models.rating_codes.read_rating"
        return cls(
            level=body.level,
            channel=body.channel,
            target=body.target,
            answers=dict(body.answers),
            comment=body.comment,
            real_name=body.real_name,
            rater_name=body.rater.name if body.rater else None,
            rater_phone=body.rater.phone if body.rater else None,
            rater_email=str(body.rater.email) if body.rater and body.rater.email else None,
            submitted_at=submitted_at,
            follow_up=1 if body.is_follow_up else 0,
            stage=body.stage or ServiceStage.WHOLE,
            covers=body.covers,
        )


@dataclass(frozen=True)
class RatingToWrite:
    """One rating of a batch (models/bulk_intake.py): its record, what was said, the version judging it."""

    record: ServiceRecord
    fields: RatingFields
    pinned: PinnedPolicy
    # The other records of its bundle it is copied onto (models/rating_coverage.py); the copies carry no case.
    copies: tuple[ServiceRecord, ...] = ()


@dataclass(frozen=True)
class IntakeResult:
    accepted: list[RatingAccepted]
    policy: PinnedPolicy  # the version the ratings were judged under and their cases pinned


@dataclass(frozen=True)
class _CaseStart:
    workflow_id: str
    workflow_input: CaseWorkflowInput
    outbox: OutboxEntry


def check_targets(record: ServiceRecord, ratings: Sequence[RatingFields]) -> None:
    """Refuse a staff rating of a record without staff, before anything is written."""
    if any(r.target == RatingTarget.STAFF for r in ratings) and record.staff_id is None:
        raise NoStaffToRate("no staff member handled this record")


async def accept_ratings(
    session: AsyncSession,
    settings: Settings,
    temporal: TemporalConnection,
    record: ServiceRecord,
    ratings: Sequence[RatingFields],
    source_system: str,
    before_commit: Callable[[list[RatingAccepted]], None] | None = None,
    client: str | None = None,
) -> IntakeResult:
    """Write the ratings of one record (one per target) and their cases in one transaction, then start the cases.

    `before_commit` adds the caller's own writes to the same transaction (the idempotency answer,
    the invitation being used). `client` names the submitting device when the channel knows it
    (docs/suspicious-ratings.md). Raises AlreadyRated (after rolling back) when any target is rated, or
    any record of a bundle the rating covers (models/rating_coverage.py).
    """
    from models.rating_coverage import cover  # local: coverage builds on this module's types

    check_targets(record, ratings)
    pinned = await policy_for_unit(session, record.unit_id)
    # The 补充评价 window and 追评 rules (models/rating_timing.py); raises TimingRefused.
    ratings = await judge_timing(session, record, ratings, pinned)
    writes = await cover(session, [RatingToWrite(record, fields, pinned) for fields in ratings])
    accepted, starts = await write_ratings(session, settings, writes, source_system, client)
    if before_commit is not None:
        before_commit(accepted)
    await session.commit()
    count_ratings_received(fields.channel.value for fields in ratings)
    for start in starts:
        await _start_after_commit(session, temporal, settings, start)
    # Flags only, never raises (docs/suspicious-ratings.md); the unit's thresholds are the profile just pinned.
    await suspicion.check_new_ratings(session, [a.rating_id for a in accepted], pinned.profile.suspicion)
    return IntakeResult(accepted=accepted, policy=pinned)


async def write_ratings(
    session: AsyncSession,
    settings: Settings,
    items: Sequence[RatingToWrite],
    source_system: str,
    client: str | None = None,
) -> tuple[list[RatingAccepted], list[_CaseStart]]:
    """Write ratings (of one record or many) and each bad one's case and outbox row; the caller commits.

    Raises AlreadyRated (after rolling back) when a target is rated already.
    """
    rows = []
    for item in items:
        assert item.record.id is not None
        rows.append(_rating_row(item.record.id, item.fields, item.pinned, source_system))
    session.add_all(rows)
    try:
        await session.flush()
        copies = await _write_copies(session, items, rows, source_system)
    except IntegrityError:
        await session.rollback()
        raise AlreadyRated(_taken_target([item.fields for item in items])) from None
    leads = [(item.record, rating) for item, rating in zip(items, rows, strict=True)]
    stage_with_ratings(session, settings, leads + [pair for pairs in copies for pair in pairs], client)

    starts: list[_CaseStart] = []
    accepted = []
    for item, rating, copied in zip(items, rows, copies, strict=True):
        opens = await opens_case(session, rating)  # a follow-up on a target with a case is recorded on it
        start = await open_case(session, settings, item.record, rating, item.pinned) if opens else None
        if start is not None:
            starts.append(start)
        assert rating.id is not None
        covered = [CoveredRating(record_no=r.record_no, rating_id=c.id) for r, c in copied if c.id is not None]
        accepted.append(
            RatingAccepted(
                rating_id=rating.id,
                is_bad=rating.is_bad,
                case_id=start.workflow_input.case_id if start else None,
                covered=covered,
            )
        )
    return accepted, starts


async def _write_copies(
    session: AsyncSession, items: Sequence[RatingToWrite], leads: Sequence[Rating], source_system: str
) -> list[list[tuple[ServiceRecord, Rating]]]:
    """Each bundle rating's copies on the other records it covers, pointing at their (flushed) lead."""
    copies = [
        [
            (record, Rating(**rating_values(record.id, item.fields, item.pinned, source_system, lead.id)))
            for record in item.copies
            if record.id is not None
        ]
        for item, lead in zip(items, leads, strict=True)
    ]
    if any(copies):
        session.add_all([copy for pairs in copies for _, copy in pairs])
        await session.flush()
    return copies


def stage_with_ratings(
    session: AsyncSession, settings: Settings, rated: Sequence[tuple[ServiceRecord, Rating]], client: str | None
) -> None:
    """What every written rating brings into its transaction, whoever wrote it (the import's COPY too)."""
    enqueue_rating_pushes(session, [rating for _, rating in rated], settings.upstream_enabled)  # docs/upstream.md
    # What the suspicious-rating detectors compare, in this transaction (docs/suspicious-ratings.md). A bundle
    # rating's copies are the same act of rating, so only its lead is fingerprinted (else one visit looks like many).
    leads = [(record, rating) for record, rating in rated if rating.lead_rating_id is None]
    suspicion.fingerprint(session, settings.signing_key(), leads, client)


def rating_values(
    record_id: int, fields: RatingFields, pinned: PinnedPolicy, source_system: str, lead_rating_id: int | None = None
) -> dict[str, Any]:
    """A rating's columns (all but its id) as intake writes them: the import's COPY writes the same."""
    return {
        "record_id": record_id,
        "level": fields.level,
        "channel": fields.channel,
        "target": fields.target,
        "stage": fields.stage,
        "lead_rating_id": lead_rating_id,
        "answers": fields.answers,
        "comment": fields.comment,
        "real_name": fields.real_name,
        "rater_name": fields.rater_name,
        "rater_phone": fields.rater_phone,
        "rater_email": fields.rater_email,
        "is_bad": pinned.profile.is_bad(fields.level.value),
        "adopted": True,
        "source_system": source_system,
        "submitted_at": fields.submitted_at or utcnow(),
        "follow_up": fields.follow_up,
    }


def _rating_row(record_id: int, fields: RatingFields, pinned: PinnedPolicy, source_system: str) -> Rating:
    return Rating(**rating_values(record_id, fields, pinned, source_system))


def _taken_target(ratings: Sequence[RatingFields]) -> RatingTarget:
    """The target to name in the refusal: the item when it was among them (that is what a rater rated first)."""
    targets = [r.target for r in ratings]
    return RatingTarget.ITEM if RatingTarget.ITEM in targets else targets[0]


async def open_case(
    session: AsyncSession, settings: Settings, record: ServiceRecord, rating: Rating, pinned: PinnedPolicy
) -> _CaseStart:
    """The case row and its outbox entry for a bad rating (the caller commits)."""
    assert rating.id is not None
    case = Case(
        rating_id=rating.id,
        unit_id=record.unit_id,
        workflow_id=workflow_id_for_rating(rating.id, settings.workflow_id_prefix),
        policy_code=pinned.code,
        policy_version=pinned.version,
    )
    session.add(case)
    await session.flush()
    assert case.id is not None
    workflow_input = CaseWorkflowInput(
        case_id=case.id,
        rating_id=rating.id,
        unit_id=record.unit_id,
        level=rating.level.value,
        real_name=rating.real_name,
        rater_has_email=rating.rater_email is not None,
        rater_has_phone=rating.rater_phone is not None,
        policy=pinned,
    )
    outbox = OutboxEntry(
        kind=START_CASE,
        case_id=case.id,
        payload={"workflow_id": case.workflow_id, "input": workflow_input.model_dump(mode="json")},
    )
    session.add(outbox)
    return _CaseStart(case.workflow_id, workflow_input, outbox)


async def _start_after_commit(
    session: AsyncSession, temporal: TemporalConnection, settings: Settings, start: _CaseStart
) -> None:
    """Committed: whatever happens here, the rating stands and the relay starts the case if this does not."""
    try:
        await _start_case_now(session, temporal, settings, start)
    except Exception as exc:  # noqa: BLE001 - committed: the rating stands and the relay starts the case
        log.warning(
            "rating %s accepted; fast start of case %s failed after commit (%s), left to the outbox relay",
            start.workflow_input.rating_id,
            start.workflow_input.case_id,
            type(exc).__name__,
            extra={"case_id": start.workflow_input.case_id},
        )
        with contextlib.suppress(Exception):
            await session.rollback()


async def _start_case_now(
    session: AsyncSession, temporal: TemporalConnection, settings: Settings, start: _CaseStart
) -> None:
    """The fast path: start the workflow now. Any failure leaves the outbox row for the relay."""
    try:
        client = await asyncio.wait_for(temporal.client(), timeout=settings.temporal_start_timeout_seconds)
        await asyncio.wait_for(
            start_case_workflow(client, start.workflow_id, start.workflow_input, settings.temporal_task_queue),
            timeout=settings.temporal_start_timeout_seconds,
        )
    except Exception as exc:  # noqa: BLE001 - Temporal down or slow: the relay takes over
        case_id = start.workflow_input.case_id
        log.warning("case %s left to the outbox relay: %s", case_id, type(exc).__name__, extra={"case_id": case_id})
        return
    await _mark_dispatched(session, start.outbox.id)


async def _mark_dispatched(session: AsyncSession, outbox_id: int | None) -> None:
    """Spare the relay a start that has happened (were this lost, the relay's start is a harmless repeat)."""
    await session.exec(
        update(OutboxEntry).where(col(OutboxEntry.id) == outbox_id).values(dispatched_at=utcnow(), attempts=1)
    )
    await session.commit()


def targets_of(record: ServiceRecord) -> list[RatingTarget]:
    """What a record's rater may rate: the item, and the staff member of a window transaction."""
    return [RatingTarget.ITEM, RatingTarget.STAFF] if record.staff_id is not None else [RatingTarget.ITEM]


async def rated_targets(session: AsyncSession, record_id: int) -> set[RatingTarget]:
    """The targets of a record that have a rating already."""
    found = (await session.exec(select(Rating.target).where(Rating.record_id == record_id))).all()
    return {RatingTarget(target) for target in found}
