"""Everything a message or page about a case needs from the database, loaded in one place."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case
from models.organisation import Unit
from models.ratings import Rating
from models.services import ServiceItem, ServiceRecord


@dataclass(frozen=True)
class CaseContext:
    case: Case
    rating: Rating
    record: ServiceRecord
    item: ServiceItem
    unit: Unit


async def load_case_context(session: AsyncSession, case_id: int) -> CaseContext:
    """The case with its rating, service record, item and current unit. Raises if the case is missing."""
    case = await session.get(Case, case_id)
    if case is None:
        raise LookupError(f"case {case_id} does not exist")
    rating = await session.get(Rating, case.rating_id)
    record = await session.get(ServiceRecord, rating.record_id) if rating else None
    item = await session.get(ServiceItem, record.item_id) if record else None
    unit = await session.get(Unit, case.unit_id)
    if rating is None or record is None or item is None or unit is None:
        raise LookupError(f"case {case_id} refers to a missing rating, record, item or unit")
    return CaseContext(case=case, rating=rating, record=record, item=item, unit=unit)
