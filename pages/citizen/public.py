"""结果全公开: the public pages of published monthly results and rectifications (no sign-in, no personal data).

/public lists the published months; /public/report?id=N shows one published version: the results by
unit and by item and the unit and window rankings, read from the version's frozen figures (never from
live data), and each bad review's rectification as a supervisor approved it after the redaction check
(models/disclosure.py). Staff rankings, overdue cases and talk flags stay on the staff pages: they name
people or are internal. The pages are the same for everyone, so caches may keep them a few minutes.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep
from models.disclosure import DisclosureStatus, RectificationDisclosure
from models.organisation import Unit, unit_subtree_ids
from models.reports.records import MonthlyReport
from models.services import ServiceItem
from pages.citizen.web import notice, page
from pages.reports_render import shown

router = APIRouter()
# Published content changes only when a correction is published: a few minutes in a cache is fine.
CACHE = "public, max-age=300"
PUBLIC_RANKINGS = ("unit", "window")


def _public(response: HTMLResponse) -> HTMLResponse:
    response.headers["Cache-Control"] = CACHE
    return response


async def _latest_versions(session: AsyncSession) -> list[MonthlyReport]:
    """The newest version of each published scope and month, newest month first."""
    rows = (
        await session.exec(
            select(MonthlyReport).order_by(col(MonthlyReport.month).desc(), col(MonthlyReport.version).desc())
        )
    ).all()
    seen: set[tuple[str, str]] = set()
    found = []
    for row in rows:
        if (row.scope_key, row.month) not in seen:
            seen.add((row.scope_key, row.month))
            found.append(row)
    return found


@router.get("/public", response_class=HTMLResponse, include_in_schema=False)
async def public_index(session: SessionDep) -> HTMLResponse:
    """评价结果公开: every published monthly report (its latest version)."""
    reports = await _latest_versions(session)
    return _public(page("public_list.html.j2", 200, "政务服务“好差评”结果公开", reports=reports))


async def _scope_units(session: AsyncSession, report: MonthlyReport) -> list[int]:
    if report.unit_id is not None:
        return sorted(await unit_subtree_ids(session, report.unit_id))
    query = select(Unit.id)
    if report.region_id is not None:
        query = query.where(Unit.region_id == report.region_id)
    return [unit for unit in (await session.exec(query)).all() if unit is not None]


async def _rectifications(session: AsyncSession, report: MonthlyReport) -> list[dict[str, str]]:
    """The approved texts of the report's units and month: unit, item and the text, nothing else."""
    query = (
        select(RectificationDisclosure.public_text, Unit.name, ServiceItem.name)
        .join(Unit, col(Unit.id) == RectificationDisclosure.unit_id)
        .join(ServiceItem, col(ServiceItem.id) == RectificationDisclosure.item_id)
        .where(
            RectificationDisclosure.status == DisclosureStatus.APPROVED,
            RectificationDisclosure.month == report.month,
            col(RectificationDisclosure.unit_id).in_(await _scope_units(session, report)),
        )
        .order_by(col(RectificationDisclosure.case_id))
    )
    return [{"unit": unit, "item": item, "text": text} for text, unit, item in (await session.exec(query)).all()]


@router.get("/public/report", response_class=HTMLResponse, include_in_schema=False)
async def public_report(
    session: SessionDep, report_id: Annotated[str, Query(alias="id", max_length=12)] = ""
) -> HTMLResponse:
    """One published version: results by unit and item, rankings, and the approved rectifications."""
    found = int(report_id) if report_id.isdigit() and 1 <= int(report_id) <= 2_147_483_647 else None
    report = await session.get(MonthlyReport, found) if found is not None else None
    if report is None:
        return notice(404, "未找到", "没有这份公开报告。")
    newer = (
        await session.exec(
            select(MonthlyReport)
            .where(MonthlyReport.scope_key == report.scope_key, MonthlyReport.month == report.month)
            .where(col(MonthlyReport.version) > report.version)
            .order_by(col(MonthlyReport.version).desc())
        )
    ).first()
    figures: dict[str, Any] = json.loads(report.figures)
    rankings = {kind: figures["rankings"][kind] for kind in PUBLIC_RANKINGS if kind in figures["rankings"]}
    return _public(
        page(
            "public_report.html.j2",
            200,
            report.title,
            report=report,
            figures=figures,
            rankings=rankings,
            newer=newer,
            rectifications=await _rectifications(session, report),
            shown=shown,
        )  # fmt: skip
    )
