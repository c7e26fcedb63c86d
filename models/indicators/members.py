"""What is behind a count (drill-down): the same rows, the same filter and the count's own condition.

A ratings, follow-ups or cases count lists ratings (a case by the rating it was opened for, with the
case's id); a records count lists service records. The list's total equals the count it came from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case
from models.indicators.counting import CONDITIONS, FOLLOW, LEAD, family_select, filter_conditions
from models.indicators.definitions import CountDef, Dimension, Family
from models.indicators.filters import IndicatorFilter
from models.ratings import Rating
from models.services import ServiceRecord


def _member_columns(family: Family) -> list[Any]:
    """The member's id (rating or record) and, for case-based counts, the case's id."""
    if family == Family.RATINGS:
        return [col(Rating.id).label("member_id")]
    if family == Family.RECORDS:
        return [col(ServiceRecord.id).label("member_id")]
    rating = LEAD if family == Family.CASES else FOLLOW
    return [col(rating.id).label("member_id"), col(Case.id).label("case_id")]


async def member_page(
    session: AsyncSession, count: CountDef, flt: IndicatorFilter, limit: int, offset: int
) -> tuple[int, list[tuple[int, int | None]]]:
    """The total and one page (newest first) of (member id, case id or None) behind a count."""
    where = [*filter_conditions(count.family, flt, Dimension.NONE), CONDITIONS[count.name](flt, Dimension.NONE)]
    members = family_select(count.family, *_member_columns(count.family)).where(*where)
    total = (await session.exec(select(func.count()).select_from(members.subquery()))).one()
    rows = await session.exec(members.order_by(members.selected_columns[0].desc()).limit(limit).offset(offset))
    page = [(row[0], row[1] if len(row) > 1 else None) for row in rows.all()]
    return int(total), page
