"""CSV exports of a supervisor's lists: what Excel in China opens, nothing it would run, and an audit record."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import audit_user_action
from models.db import utcnow
from models.deadlines import CHINA_TZ
from models.users import User

# A cell starting like this is a formula to Excel (CSV injection): a leading quote keeps it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def csv_response(name: str, header: str, rows: Sequence[Sequence[object]]) -> Response:
    """UTF-8 with a BOM, which Excel in China needs to read it as Unicode; a Chinese file name, an ASCII fallback."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header.split())
    writer.writerows([csv_cell(value) for value in row] for row in rows)
    stamp = utcnow().astimezone(CHINA_TZ).strftime("%Y%m%d-%H%M")
    disposition = f"attachment; filename=\"hcp-{stamp}.csv\"; filename*=UTF-8''{quote(f'{name}-{stamp}.csv')}"
    return Response(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


async def audit_export(session: AsyncSession, request: Request, user: User, what: str, filters: dict[str, Any],
                        rows: int, total: int) -> None:  # fmt: skip
    """An export takes case data off the system: who took which view, and how many rows."""
    after = {"filters": {k: v for k, v in filters.items() if v != ""}, "rows": rows, "total": total}
    audit_user_action(session, request, user, f"export.{what}", "case_list", what, unit_id=user.unit_id, after=after)
    await session.commit()
