"""Cases in GB/T 39046-2020's national data sets, as CSV: 表10 (a row per case), 表11 电子监察 (a row per
reminder or escalation). The same files as `python -m runtime.export_cases`; every export is audited.

Administrators export everything; a supervisor the cases now at a unit of their subtree (as the
board shows them). UTF-8 with a BOM and CRLF lines, the standard's Chinese column names, cells that
Excel would run as a formula neutralised (pages/csv_export.py csv_cell), rows streamed in batches.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentUser, SessionDep, audit_user_action, get_db, visible_unit_ids
from api.errors import api_error
from api.params import IsoText, OptionalIdQuery
from models.db import Database, utcnow
from models.national_tables import table10, table11
from models.national_tables.codes import table11_codes
from models.national_tables.common import ExportFilter
from models.organisation import Region, Unit, unit_subtree_ids
from models.roles import Role
from models.table9_export import day_range
from models.users import User
from pages.csv_export import csv_cell

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])

Table = Literal["10", "11"]
CSV_TYPE = "text/csv; charset=utf-8"
MAX_DAYS = 366
BATCH = 500
_NAMES = {"10": ("投诉数据-表10", "cases-table10"), "11": ("电子监察-表11", "supervision-table11")}
AUDIT_ACTIONS = {"10": "export.cases_table10", "11": "export.supervision_table11"}


def _line(values: list[str] | tuple[str, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


@dataclass
class CaseTableExport:
    """One national table for a filter as CSV text, piece by piece (oldest first); `rows` counts them.

    表10 selects cases by when they were opened; 表11 reminders and escalations by when they happened.
    """

    db: Database
    table: Table
    filter: ExportFilter
    now: datetime
    rows: int = 0

    @property
    def columns(self) -> tuple[str, ...]:
        return table10.COLUMNS if self.table == "10" else table11.COLUMNS

    async def chunks(self) -> AsyncIterator[str]:
        yield "\ufeff" + _line(self.columns)
        codes = table11_codes()  # read (and checked) before the first row, so a broken table fails at once
        after_id = 0
        while True:
            async with self.db.session() as session:
                if self.table == "10":
                    batch = await table10.table10_batch(session, self.filter, after_id, BATCH, self.now)
                    last = batch[-1][0] if batch else None
                else:
                    batch, last = await table11.table11_batch(session, self.filter, after_id, BATCH, codes)
            if last is None:
                return
            self.rows += len(batch)
            yield "".join(_line([csv_cell(row[column]) for column in self.columns]) for _, row in batch)
            after_id = last


async def export_scope(
    session: AsyncSession, user: User | None, unit_id: int | None, region: str | None
) -> tuple[frozenset[int] | None, int | None]:
    """The units (None: all) and the region id the export covers; the caller's scope is never widened.

    `user` None is the operator's command, which sees everything.
    """
    visible = await visible_unit_ids(session, user) if user is not None else None
    units = visible
    if unit_id is not None:
        if await session.get(Unit, unit_id) is None:
            raise api_error(422, "unknown_unit", f"单位 {unit_id} 不存在", field="unit_id")
        if visible is not None and unit_id not in visible:
            raise api_error(403, "outside_scope", f"单位 {unit_id} 不在您的督办范围内", field="unit_id")
        asked = await unit_subtree_ids(session, unit_id)
        units = asked if visible is None else asked & visible
    region_id = None
    if region is not None:
        region_id = (await session.exec(select(Region.id).where(Region.code == region))).first()
        if region_id is None:
            raise api_error(422, "unknown_region", f"行政区划 {region!r} 不存在", field="region")
    return (frozenset(units) if units is not None else None), region_id


def check_period(first: date, last: date) -> None:
    if last < first:
        raise api_error(422, "bad_range", f"to（{last}）不能早于 from（{first}）", field="to")
    if (last - first).days >= MAX_DAYS:
        raise api_error(422, "bad_range", f"一次最多导出 {MAX_DAYS} 天，请分段导出", field="to")


async def exporter(user: CurrentUser) -> User:
    """Administrators, and supervisors over their subtree; 403 for everyone else."""
    if user.role in (Role.ADMIN, Role.SUPERVISOR):
        return user
    raise api_error(403, "export_not_allowed", "国家标准数据导出仅对系统管理员和督办人员开放")


Exporter = Annotated[User, Depends(exporter)]
FirstDay = Annotated[date, IsoText, Query(alias="from", description="First day (China time), YYYY-MM-DD")]
LastDay = Annotated[date, IsoText, Query(alias="to", description="Last day, included (China time), YYYY-MM-DD")]
RegionCode = Annotated[str | None, Query(min_length=1, max_length=12, description="行政区划代码 of the case's unit")]
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"description": "UTF-8 with a BOM", "content": {"text/csv": {}}},
    403: {"description": "Neither an administrator nor a supervisor, or unit_id outside the supervisor's subtree"},
}


async def _export(
    table: Table, request: Request, session: AsyncSession, db: Database, user: User,
    first: date, last: date, unit_id: int | None, region: str | None,
) -> StreamingResponse:  # fmt: skip
    check_period(first, last)
    units, region_id = await export_scope(session, user, unit_id, region)
    filters = {"from": first.isoformat(), "to": last.isoformat(), "unit_id": unit_id, "region": region}
    audit_user_action(
        session, request, user, AUDIT_ACTIONS[table], "case_export", f"{first.isoformat()}..{last.isoformat()}",
        unit_id=user.unit_id, after={k: v for k, v in filters.items() if v is not None},
    )  # fmt: skip
    await session.commit()
    export = CaseTableExport(db, table, ExportFilter(*day_range(first, last), units, region_id), utcnow())
    title, ascii_name = _NAMES[table]
    span = f"{first:%Y%m%d}-{last:%Y%m%d}"
    disposition = f"attachment; filename=\"{ascii_name}-{span}.csv\"; filename*=UTF-8''{quote(f'{title}-{span}.csv')}"
    # The rows are read with their own sessions while the answer streams (the request's is closed by then).
    return StreamingResponse(
        (chunk.encode("utf-8") async for chunk in export.chunks()),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


@router.get("/table10.csv", response_class=StreamingResponse, responses=_CSV)
async def export_table10(
    request: Request, session: SessionDep, db: Annotated[Database, Depends(get_db)], user: Exporter,
    first: FirstDay, last: LastDay, unit_id: OptionalIdQuery = None, region: RegionCode = None,
) -> StreamingResponse:  # fmt: skip
    """Cases opened from `from` to `to` (China days) as GB/T 39046-2020 表10 complaint rows, one per case."""
    return await _export("10", request, session, db, user, first, last, unit_id, region)


@router.get("/table11.csv", response_class=StreamingResponse, responses=_CSV)
async def export_table11(
    request: Request, session: SessionDep, db: Annotated[Database, Depends(get_db)], user: Exporter,
    first: FirstDay, last: LastDay, unit_id: OptionalIdQuery = None, region: RegionCode = None,
) -> StreamingResponse:  # fmt: skip
    """Reminders and escalations from `from` to `to` as GB/T 39046-2020 表11 电子监察 rows, one per event."""
    return await _export("11", request, session, db, user, first, last, unit_id, region)
