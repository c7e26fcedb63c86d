"""What is behind each count of the indicators report (drill-down): ratings and service records, listed.

`GET /api/v1/ratings?subset=<count>&<the report's filter>` lists the ratings a count counted (a case
count: each case's rating, with the case id), `GET /api/v1/service-records?subset=<count>&…` the
transactions. Same filter, same scope, same SQL as the count (models/indicators/members.py), so a
list's total is its count. The rater is masked as everywhere else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep
from api.errors import api_error, error_responses
from api.indicator_scope import FilterQueryDep, IndicatorUser, resolve
from api.params import Limit, Offset
from models.case.records import Case
from models.indicators.definitions import COUNT_BY_NAME, COUNTS, CountDef, Dimension, Members
from models.indicators.members import member_page
from models.organisation import Unit
from models.privacy import mask_name, mask_phone
from models.ratings import LEVEL_LABELS_ZH, Rating, RatingChannel, RatingLevel, RatingTarget, ServiceStage
from models.services import ServiceChannel, ServiceItem, ServiceRecord
from models.suspicion.records import channel_label

router = APIRouter(tags=["indicators"])


class RatingListItem(BaseModel):
    id: int
    record_no: str
    unit_id: int
    unit_name: str
    item_id: int
    item_name: str
    staff_id: int | None
    level: RatingLevel
    level_label: str
    channel: RatingChannel
    channel_label: str
    target: RatingTarget
    stage: ServiceStage
    follow_up: int = Field(description="0: the rating; n: the n-th 追评")
    lead_rating_id: int | None = Field(description="a bundle copy: the rating that carries the case")
    is_bad: bool
    adopted: bool
    real_name: bool
    rater_name: str | None = Field(description="masked")
    rater_phone: str | None = Field(description="masked")
    comment: str
    submitted_at: datetime
    case_id: int | None = Field(description="the case of this rating (or of its bundle's lead rating)")


class RatingListPage(BaseModel):
    subset: str
    subset_label: str
    items: list[RatingListItem]
    total: int
    limit: int
    offset: int


class RecordListItem(BaseModel):
    id: int
    record_no: str
    unit_id: int
    unit_name: str
    item_id: int
    item_name: str
    staff_id: int | None
    service_channel: ServiceChannel
    bundle_no: str | None
    completed_at: datetime


class RecordListPage(BaseModel):
    subset: str
    subset_label: str
    items: list[RecordListItem]
    total: int
    limit: int
    offset: int


def _subset(value: str, members: Members) -> CountDef:
    count = COUNT_BY_NAME.get(value)
    if count is None or count.members != members:
        choices = ", ".join(c.name for c in COUNTS if c.members == members)
        raise api_error(422, "unknown_subset", f"subset 不支持 {value!r}；可选：{choices}", field="subset")
    return count


def _subset_query(members: Members) -> object:
    names = [c.name for c in COUNTS if c.members == members]
    return Query(max_length=64, description="a count of GET /api/v1/indicators", json_schema_extra={"enum": names})


@router.get("/api/v1/ratings", response_model=RatingListPage, responses=error_responses(403))
async def list_ratings(
    session: SessionDep,
    user: IndicatorUser,
    query: FilterQueryDep,
    subset: Annotated[str, _subset_query(Members.RATINGS)] = "ratings",
    limit: Limit = 50,
    offset: Offset = 0,
) -> RatingListPage:
    """The ratings behind a count of the indicators report (a case count: its cases' ratings), newest first."""
    count = _subset(subset, Members.RATINGS)
    resolved = await resolve(session, user, query, Dimension.NONE)
    total, page = await member_page(session, count, resolved.filter, limit, offset)
    items = await _rating_items(session, page)
    return RatingListPage(
        subset=count.name, subset_label=count.label, items=items, total=total, limit=limit, offset=offset
    )


@router.get("/api/v1/service-records", response_model=RecordListPage, responses=error_responses(403))
async def list_service_records(
    session: SessionDep,
    user: IndicatorUser,
    query: FilterQueryDep,
    subset: Annotated[str, _subset_query(Members.RECORDS)] = "completed_records",
    limit: Limit = 50,
    offset: Offset = 0,
) -> RecordListPage:
    """The transactions (办件) behind a count of the indicators report (e.g. unrated_records), newest first."""
    count = _subset(subset, Members.RECORDS)
    resolved = await resolve(session, user, query, Dimension.NONE)
    total, page = await member_page(session, count, resolved.filter, limit, offset)
    ids = [member_id for member_id, _case in page]
    rows = (
        await session.exec(
            select(ServiceRecord, Unit.name, ServiceItem.name)
            .join(Unit, col(Unit.id) == ServiceRecord.unit_id)
            .join(ServiceItem, col(ServiceItem.id) == ServiceRecord.item_id)
            .where(col(ServiceRecord.id).in_(ids))
        )
    ).all()
    by_id = {record.id: (record, unit_name, item_name) for record, unit_name, item_name in rows}
    items = []
    for member_id in ids:
        record, unit_name, item_name = by_id[member_id]
        assert record.id is not None
        items.append(
            RecordListItem(
                id=record.id,
                record_no=record.record_no,
                unit_id=record.unit_id,
                unit_name=unit_name,
                item_id=record.item_id,
                item_name=item_name,
                staff_id=record.staff_id,
                service_channel=record.service_channel,
                bundle_no=record.bundle_no,
                completed_at=record.completed_at,
            )
        )
    return RecordListPage(
        subset=count.name, subset_label=count.label, items=items, total=total, limit=limit, offset=offset
    )


async def _rating_items(session: AsyncSession, page: list[tuple[int, int | None]]) -> list[RatingListItem]:
    ids = [member_id for member_id, _case in page]
    rows = (
        await session.exec(
            select(Rating, ServiceRecord, Unit.name, ServiceItem.name)
            .join(ServiceRecord, col(ServiceRecord.id) == Rating.record_id)
            .join(Unit, col(Unit.id) == ServiceRecord.unit_id)
            .join(ServiceItem, col(ServiceItem.id) == ServiceRecord.item_id)
            .where(col(Rating.id).in_(ids))
        )
    ).all()
    by_id = {rating.id: (rating, record, unit_name, item_name) for rating, record, unit_name, item_name in rows}
    # A rating's case is its own, or (a bundle copy) its lead rating's.
    leads = {rating.lead_rating_id or rating.id for rating, *_rest in by_id.values()}
    case_of = dict((await session.exec(select(Case.rating_id, Case.id).where(col(Case.rating_id).in_(leads)))).all())
    items = []
    for member_id, case_id in page:
        rating, record, unit_name, item_name = by_id[member_id]
        assert rating.id is not None
        items.append(
            RatingListItem(
                id=rating.id,
                record_no=record.record_no,
                unit_id=record.unit_id,
                unit_name=unit_name,
                item_id=record.item_id,
                item_name=item_name,
                staff_id=record.staff_id if rating.target == RatingTarget.STAFF else None,
                level=rating.level,
                level_label=LEVEL_LABELS_ZH[rating.level],
                channel=rating.channel,
                channel_label=channel_label(rating.channel),
                target=rating.target,
                stage=rating.stage,
                follow_up=rating.follow_up,
                lead_rating_id=rating.lead_rating_id,
                is_bad=rating.is_bad,
                adopted=rating.adopted,
                real_name=rating.real_name,
                rater_name=mask_name(rating.rater_name),
                rater_phone=mask_phone(rating.rater_phone),
                comment=rating.comment,
                submitted_at=rating.submitted_at,
                case_id=case_id if case_id is not None else case_of.get(rating.lead_rating_id or rating.id),
            )
        )
    return items
