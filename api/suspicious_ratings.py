"""The review queue of suspicious ratings (可疑评价): supervisors of the units concerned, and administrators.

A flag belongs to the smallest unit whose subtree holds all its ratings (models/suspicion/flags.py),
so a supervisor sees a flag exactly when every rating behind it is in their subtree. A decision
changes the flag only, never a rating or its case, and is audited once (docs/suspicious-ratings.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentUser, SessionDep, audit_user_action, visible_unit_ids
from api.errors import api_error, error_responses
from api.params import IdPath, Limit, Offset
from models.case.records import Case
from models.db import utcnow
from models.organisation import Unit
from models.privacy import mask_name, mask_phone
from models.ratings import LEVEL_LABELS_ZH, Rating, RatingChannel, RatingLevel, RatingTarget, ServiceStage
from models.request_body import RequestBody
from models.roles import Role
from models.services import ServiceRecord
from models.suspicion.records import (
    DETECTOR_LABELS_ZH,
    FLAG_STATUS_LABELS_ZH,
    Detector,
    FlagStatus,
    SuspicionFlag,
    SuspicionFlagRating,
    channel_label,
)
from models.users import User

router = APIRouter(prefix="/api/v1/suspicious-ratings", tags=["suspicious ratings"])

# A flag lists at most this many of its ratings (the newest); rating_count says how many there are.
RATINGS_SHOWN = 50


class FlaggedRating(BaseModel):
    """A rating behind a flag, as the rating API shows it: the rater masked."""

    id: int
    record_no: str
    unit_id: int
    unit_name: str
    level: RatingLevel
    level_label: str
    channel: RatingChannel
    channel_label: str
    target: RatingTarget
    stage: ServiceStage
    lead_rating_id: int | None = Field(description="Always none: a bundle rating's copies are never fingerprinted")
    comment: str
    real_name: bool
    rater_name: str | None
    rater_phone: str | None
    is_bad: bool
    adopted: bool
    case_id: int | None
    source_system: str
    submitted_at: datetime


class SuspicionFlagRead(BaseModel):
    id: int
    detector: Detector
    detector_label: str
    status: FlagStatus
    status_label: str
    reason: str = Field(description="Why, in Chinese, with the numbers the detector saw")
    unit_id: int | None = Field(description="The unit whose supervisors review it (all its ratings are below it)")
    rating_count: int
    first_at: datetime
    last_at: datetime
    created_at: datetime
    updated_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    note: str
    ratings: list[FlaggedRating] = Field(description=f"The newest {RATINGS_SHOWN} ratings behind the flag")


class SuspicionFlagPage(BaseModel):
    items: list[SuspicionFlagRead]
    total: int
    limit: int
    offset: int


class SuspicionDecision(RequestBody):
    """Body of POST /api/v1/suspicious-ratings/{flag_id}/decision."""

    decision: Literal["confirmed", "dismissed"] = Field(description="confirmed 确认可疑, dismissed 排除")
    note: str = Field(min_length=1, max_length=1000, description="What the reviewer found, for the record")


async def _units_in_scope(session: AsyncSession, user: User) -> set[int] | None:
    """Supervisors: their subtree; administrators: all (None). Anyone else may not use the queue."""
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise api_error(403, "forbidden", "只有督办人员和系统管理员可以核查可疑评价")
    return await visible_unit_ids(session, user)


StatusFilter = Annotated[
    FlagStatus | None, Query(description="open 待核查, confirmed 确认可疑, dismissed 已排除; omitted: all")
]


@router.get("", response_model=SuspicionFlagPage, responses=error_responses(403))
async def list_flags(
    session: SessionDep, user: CurrentUser, status: StatusFilter = None, limit: Limit = 20, offset: Offset = 0
) -> SuspicionFlagPage:
    """Flags in the caller's scope, the most recently changed first."""
    units = await _units_in_scope(session, user)
    conditions: list[ColumnElement[bool]] = []
    if units is not None:
        conditions.append(col(SuspicionFlag.unit_id).in_(units))
    if status is not None:
        conditions.append(col(SuspicionFlag.status) == status)
    total = (await session.exec(select(func.count()).select_from(SuspicionFlag).where(*conditions))).one()
    order = (col(SuspicionFlag.updated_at).desc(), col(SuspicionFlag.id).desc())
    flags = (
        await session.exec(select(SuspicionFlag).where(*conditions).order_by(*order).limit(limit).offset(offset))
    ).all()
    return SuspicionFlagPage(
        items=[await _read(session, flag) for flag in flags], total=total, limit=limit, offset=offset
    )


@router.post("/{flag_id}/decision", response_model=SuspicionFlagRead, responses=error_responses(403, 404, 409))
async def decide_flag(
    flag_id: IdPath, body: SuspicionDecision, request: Request, session: SessionDep, user: CurrentUser
) -> SuspicionFlagRead:
    """Confirm or dismiss an open flag, once. The ratings and their cases are left as they are."""
    units = await _units_in_scope(session, user)
    flag = await session.get(SuspicionFlag, flag_id)
    if flag is None or (units is not None and flag.unit_id not in units):
        raise api_error(404, "not_found", f"可疑评价标记 {flag_id} 不存在或无权查看")
    if flag.status != FlagStatus.OPEN:
        raise api_error(
            409, "already_decided", f"可疑评价标记 {flag_id} 已处理（{FLAG_STATUS_LABELS_ZH[flag.status]}）"
        )
    now = utcnow()
    # Only an open flag: two reviewers deciding at once decide it once, and one audit record is written.
    result = await (await session.connection()).execute(
        update(SuspicionFlag)
        .where(col(SuspicionFlag.id) == flag_id, col(SuspicionFlag.status) == FlagStatus.OPEN)
        .values(status=FlagStatus(body.decision), open_key=None, decided_by=user.id, decided_at=now, note=body.note, updated_at=now)
    )  # fmt: skip
    if result.rowcount != 1:
        await session.rollback()
        raise api_error(409, "already_decided", f"可疑评价标记 {flag_id} 已由他人处理")
    audit_user_action(
        session, request, user, "suspicion.decide", "suspicion_flag", flag_id, unit_id=flag.unit_id, reason=body.note,
        before={"status": FlagStatus.OPEN.value}, after={"status": body.decision, "detector": flag.detector.value},
    )  # fmt: skip
    await session.commit()
    await session.refresh(flag)
    return await _read(session, flag)


async def _read(session: AsyncSession, flag: SuspicionFlag) -> SuspicionFlagRead:
    assert flag.id is not None
    rows = (
        await session.exec(
            select(Rating, ServiceRecord, Unit.name, Case.id)
            .join(SuspicionFlagRating, col(SuspicionFlagRating.rating_id) == Rating.id)
            .join(ServiceRecord, col(ServiceRecord.id) == Rating.record_id)
            .join(Unit, col(Unit.id) == ServiceRecord.unit_id)
            .outerjoin(Case, col(Case.rating_id) == Rating.id)
            .where(SuspicionFlagRating.flag_id == flag.id)
            .order_by(col(Rating.submitted_at).desc(), col(Rating.id).desc())
            .limit(RATINGS_SHOWN)
        )
    ).all()
    ratings = [
        FlaggedRating(
            id=rating.id, record_no=record.record_no, unit_id=record.unit_id, unit_name=unit_name, level=rating.level,
            level_label=LEVEL_LABELS_ZH.get(rating.level, rating.level.value), channel=rating.channel,
            channel_label=channel_label(rating.channel), target=rating.target, stage=rating.stage,
            lead_rating_id=rating.lead_rating_id, comment=rating.comment,
            real_name=rating.real_name, rater_name=mask_name(rating.rater_name), rater_phone=mask_phone(rating.rater_phone),
            is_bad=rating.is_bad, adopted=rating.adopted, case_id=case_id, source_system=rating.source_system,
            submitted_at=rating.submitted_at,
        )
        for rating, record, unit_name, case_id in rows
    ]  # fmt: skip
    return SuspicionFlagRead(
        id=flag.id, detector=flag.detector, detector_label=DETECTOR_LABELS_ZH[flag.detector], status=flag.status,
        status_label=FLAG_STATUS_LABELS_ZH[flag.status], reason=flag.reason, unit_id=flag.unit_id,
        rating_count=flag.rating_count, first_at=flag.first_at, last_at=flag.last_at, created_at=flag.created_at,
        updated_at=flag.updated_at, decided_by=flag.decided_by, decided_at=flag.decided_at, note=flag.note,
        ratings=ratings,
    )  # fmt: skip
