"""Ratings exported as GB/T 39046-2020 表9 rows (CSV), for administrators: the platform's bulk import.

The same file as `python -m runtime.export_ratings`; every export is audited. 评价人 is as the push
reports it (models/upstream_fields.py: a masked name or 匿名), never a phone number or an email.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import CurrentAdmin, SessionDep, audit_user_action, get_db
from api.errors import api_error
from api.params import IsoText
from models.db import Database
from models.table9_export import Table9Export, day_range

router = APIRouter(prefix="/api/v1/ratings", tags=["ratings"])

CSV_TYPE = "text/csv; charset=utf-8"
MAX_DAYS = 366


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"description": "表9 rows, UTF-8 with a BOM", "content": {"text/csv": {}}}},
)
async def export_ratings(
    request: Request,
    session: SessionDep,
    db: Annotated[Database, Depends(get_db)],
    admin: CurrentAdmin,
    first: Annotated[date, IsoText, Query(alias="from", description="First day (China time), YYYY-MM-DD")],
    last: Annotated[date, IsoText, Query(alias="to", description="Last day, included (China time), YYYY-MM-DD")],
) -> StreamingResponse:
    """Every rating submitted from `from` to `to` (days included, China time) as GB/T 39046-2020 表9."""
    if last < first:
        raise api_error(422, "bad_range", "结束日期不能早于开始日期", field="to")
    if (last - first).days >= MAX_DAYS:
        raise api_error(422, "bad_range", f"一次最多导出 {MAX_DAYS} 天，请分段导出", field="to")
    audit_user_action(
        session,
        request,
        admin,
        "export.ratings_table9",
        "rating_export",
        f"{first.isoformat()}..{last.isoformat()}",
        after={"from": first.isoformat(), "to": last.isoformat()},
    )
    await session.commit()
    name = f"评价数据-表9-{first:%Y%m%d}-{last:%Y%m%d}.csv"
    disposition = f"attachment; filename=\"ratings-{first:%Y%m%d}-{last:%Y%m%d}.csv\"; filename*=UTF-8''{quote(name)}"
    # The rows are read with their own sessions while the answer streams (the request's is closed by then).
    return StreamingResponse(
        (chunk.encode("utf-8") async for chunk in Table9Export(db, *day_range(first, last)).chunks()),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )
