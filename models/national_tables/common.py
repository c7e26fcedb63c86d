"""What both national tables share: the export's filter, the standard's time formats, the timeline's readers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case, CaseEvent
from models.deadlines import CHINA_TZ
from models.organisation import Unit
from models.upstream_fields import platform_time
from models.users import User

__all__ = ["ExportFilter", "platform_time", "supervision_time", "events_of", "user_names", "units_by_id"]


@dataclass(frozen=True)
class ExportFilter:
    """Rows whose moment lies in [start, end), of cases now at one of `units` (None: all) in a region (None: all)."""

    start: datetime
    end: datetime
    units: frozenset[int] | None = None
    region_id: int | None = None

    def case_conditions(self) -> list[Any]:
        """SQL conditions on Case (joined with its Unit) for the units and the region."""
        conditions: list[Any] = []
        if self.units is not None:
            conditions.append(col(Case.unit_id).in_(self.units))
        if self.region_id is not None:
            conditions.append(col(Unit.region_id) == self.region_id)
        return conditions


def supervision_time(moment: datetime | None) -> str:
    """表11's 日期时间型 YYYYMMDDhhmmss (no "T", unlike 表9 and 表10), China time."""
    return moment.astimezone(CHINA_TZ).strftime("%Y%m%d%H%M%S") if moment else ""


async def events_of(session: AsyncSession, case_ids: Iterable[int]) -> dict[int, list[CaseEvent]]:
    """Every timeline event of these cases, oldest first, by case."""
    found: dict[int, list[CaseEvent]] = {case_id: [] for case_id in case_ids}
    if not found:
        return found
    query = select(CaseEvent).where(col(CaseEvent.case_id).in_(found)).order_by(col(CaseEvent.id))
    for event in (await session.exec(query)).all():
        found[event.case_id].append(event)
    return found


def actor_user_id(actor: str) -> int | None:
    """The user id of a timeline actor ("user:7"); None for the system or the rater."""
    prefix, _, number = actor.partition(":")
    return int(number) if prefix == "user" and number.isdigit() else None


async def user_names(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, str]:
    """Staff display names by id (承办人: the staff member who took the case; never a rater)."""
    ids = set(user_ids)
    if not ids:
        return {}
    rows = await session.exec(select(User.id, User.display_name).where(col(User.id).in_(ids)))
    return {user_id: name for user_id, name in rows.all() if user_id is not None}


async def units_by_id(session: AsyncSession, unit_ids: Iterable[int]) -> dict[int, Unit]:
    ids = set(unit_ids)
    if not ids:
        return {}
    return {unit.id: unit for unit in (await session.exec(select(Unit).where(col(Unit.id).in_(ids)))).all() if unit.id}


def last_event(events: Sequence[CaseEvent], *actions: str) -> CaseEvent | None:
    return next((event for event in reversed(events) if event.action in actions), None)
