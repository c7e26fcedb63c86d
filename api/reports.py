"""Monthly reports over HTTP: the draft, publishing (frozen versions), corrections, the stored files.

Reading follows the indicators' scope (api/rankings.py resolve_scope); publishing and correcting are
for supervisors and administrators, each with an audit record. A published version is served from
what was stored, byte for byte, whatever the data does afterwards. docs/reports.md.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep, audit_user_action, visible_unit_ids
from api.errors import api_error, error_responses
from api.indicator_scope import IndicatorUser
from api.params import IdPath, OptionalIdQuery
from api.rankings import MonthQuery, RegionQuery, ScopeRead, current_month, parse_month, resolve_scope
from models.db import utcnow
from models.organisation import Region, Unit, unit_subtree_ids
from models.policy import PinnedPolicy
from models.reports.figures import ReportScope, build_figures
from models.reports.publish import (
    AlreadyPublished,
    NotLatest,
    Rendered,
    canonical_json,
    corrected_by,
    sha256_hex,
    store_version,
    version_read,
    versions,
)
from models.reports.records import MonthlyReport, ReportRead, ReportVersionRead
from models.request_body import RequestBody
from models.roles import Role
from models.users import User
from pages.reports_render import XLSX_TYPE, render_csv, render_html, render_xlsx

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
PUBLISHERS = (Role.SUPERVISOR, Role.ADMIN)


class ReportCreate(RequestBody):
    """Body of POST /api/v1/reports: the month and the scope (a unit's subtree or a region; neither: your own)."""

    month: str = Field(min_length=7, max_length=7, description="YYYY-MM, a month that is over")
    unit_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    region: str | None = Field(default=None, min_length=1, max_length=12, description="行政区划代码")


class ReportCorrection(RequestBody):
    reason: str = Field(min_length=1, max_length=2000, description="更正原因: what was wrong and what changed")


class ReportDraft(BaseModel):
    scope: ScopeRead
    month: str
    content_sha256: str = Field(description="SHA-256 of these figures' canonical JSON (changes with the data)")
    figures: dict[str, Any]


class ReportList(BaseModel):
    scope: ScopeRead
    month: str | None
    versions: list[ReportVersionRead]


def publisher(user: User) -> User:
    if user.role not in PUBLISHERS:
        raise api_error(403, "not_publisher", "只有督办人员和系统管理员可以发布月度报告")
    return user


async def publisher_user(user: IndicatorUser) -> User:
    """A dependency: refused before the body is read, so whom the rule refuses never learns what a body needs."""
    return publisher(user)


Publisher = Annotated[User, Depends(publisher_user)]


async def draft(
    session: AsyncSession, scope: ReportScope, pinned: PinnedPolicy, month: str
) -> tuple[str, str, Rendered]:
    """The month's figures now: canonical JSON, its hash, and the three renderings."""
    figures_json = canonical_json(await build_figures(session, scope, month, pinned, utcnow()))
    digest = sha256_hex(figures_json)
    figures = json.loads(figures_json)
    rendered = Rendered(render_html(figures, digest), render_csv(figures, digest), render_xlsx(figures, digest))
    return figures_json, digest, rendered


async def publish(
    session: AsyncSession, request: Request, user: User, scoped: tuple[ReportScope, PinnedPolicy], month: str,
    corrects: MonthlyReport | None = None, reason: str = "",
) -> MonthlyReport:  # fmt: skip
    """Freeze the month's report as the next version, with its audit record; 409 when not allowed."""
    publisher(user)
    scope, pinned = scoped
    if month >= current_month():
        raise api_error(422, "month_not_over", f"{month} 尚未结束，月末后方可发布", field="month")
    figures_json, _digest, rendered = await draft(session, scope, pinned, month)
    assert user.id is not None
    try:
        report = await store_version(session, scope, month, figures_json, rendered, user.id, corrects, reason)
    except AlreadyPublished:
        raise api_error(
            409, "already_published", f"{scope.label} {month} 的月度报告已发布；如需修改请发布更正版本"
        ) from None
    except NotLatest:
        raise api_error(409, "not_latest", "只能更正最新版本") from None
    action = "report.corrected" if corrects is not None else "report.published"
    after = {"scope": scope.key, "month": month, "version": report.version, "content_sha256": report.content_sha256}
    if corrects is not None:
        after |= {"corrects_id": corrects.id}
    audit_user_action(session, request, user, action, "monthly_report", report.id, unit_id=scope.unit_id, reason=reason,
                      after=after)  # fmt: skip
    await session.commit()
    return report


async def visible_report(session: AsyncSession, user: User, report_id: int) -> MonthlyReport:
    """A published version the caller may read; 404 (as if missing) otherwise."""
    report = await session.get(MonthlyReport, report_id)
    visible = await visible_unit_ids(session, user)
    if report is not None and visible is not None:
        if report.unit_id is not None:
            units = await unit_subtree_ids(session, report.unit_id)
        elif report.region_id is not None:
            units = {
                u for u in (await session.exec(select(Unit.id).where(Unit.region_id == report.region_id))).all() if u
            }
        else:
            units = {-1}  # "all": administrators only
        if not units <= visible:
            report = None
    if report is None:
        raise api_error(404, "not_found", f"月度报告 {report_id} 不存在或无权查看")
    return report


async def report_read(session: AsyncSession, report: MonthlyReport) -> ReportRead:
    assert report.id is not None
    base = version_read(report, await corrected_by(session, [report.id]))
    return ReportRead(**base.model_dump(), figures=json.loads(report.figures))


@router.get("", response_model=ReportList, responses=error_responses(403, 422))
async def list_reports(
    session: SessionDep, user: IndicatorUser, month: Annotated[str | None, MonthQuery] = None,
    unit_id: OptionalIdQuery = None, region: RegionQuery = None,
) -> ReportList:  # fmt: skip
    """The published versions of a scope (of one month, or every month), newest first, each with its hash."""
    parsed = parse_month(month) if month is not None else None
    scope, _ = await resolve_scope(session, user, unit_id, region)
    found = await versions(session, scope.key, parsed)
    corrected = await corrected_by(session, [r.id for r in found if r.id is not None])
    return ReportList(
        scope=ScopeRead(key=scope.key, label=scope.label), month=parsed,
        versions=[version_read(r, corrected) for r in found],
    )  # fmt: skip


@router.get("/draft", response_model=ReportDraft, responses=error_responses(403, 422))
async def get_draft(
    session: SessionDep, user: IndicatorUser, month: MonthQuery, unit_id: OptionalIdQuery = None,
    region: RegionQuery = None,
) -> ReportDraft:  # fmt: skip
    """The month's report as the data stands now (not published: it changes with the data)."""
    scope, pinned = await resolve_scope(session, user, unit_id, region)
    figures_json, digest, _rendered = await draft(session, scope, pinned, parse_month(month))
    return ReportDraft(
        scope=ScopeRead(key=scope.key, label=scope.label), month=month, content_sha256=digest,
        figures=json.loads(figures_json),
    )  # fmt: skip


@router.post("", status_code=201, response_model=ReportRead, responses=error_responses(403, 409, 422))
async def publish_report(request: Request, session: SessionDep, user: Publisher, body: ReportCreate) -> ReportRead:
    """发布: freeze a month that is over as version 1 (figures, HTML, CSV, XLSX and their SHA-256). Audited."""
    publisher(user)
    month = parse_month(body.month)
    scoped = await resolve_scope(session, user, body.unit_id, body.region)
    return await report_read(session, await publish(session, request, user, scoped, month))


@router.post(
    "/{report_id}/corrections", status_code=201, response_model=ReportRead, responses=error_responses(403, 404, 409)
)
async def correct_report(
    request: Request, session: SessionDep, user: Publisher, report_id: IdPath, body: ReportCorrection
) -> ReportRead:
    """更正: publish the month again as a new version that corrects this one (the latest), with the reason. Audited."""
    publisher(user)
    old = await visible_report(session, user, report_id)
    scoped = await scope_of(session, user, old)
    return await report_read(session, await publish(session, request, user, scoped, old.month, old, body.reason))


async def scope_of(session: AsyncSession, user: User, report: MonthlyReport) -> tuple[ReportScope, PinnedPolicy]:
    """The scope a published version covers, resolved again (for its correction)."""
    region = await session.get(Region, report.region_id) if report.region_id is not None else None
    return await resolve_scope(session, user, report.unit_id, region.code if region is not None else None)


@router.get("/{report_id}", response_model=ReportRead, responses=error_responses(403, 404))
async def get_report(session: SessionDep, user: IndicatorUser, report_id: IdPath) -> ReportRead:
    """A published version: its figures as published, its hash, and what corrects it or what it corrects."""
    return await report_read(session, await visible_report(session, user, report_id))


_FILES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8", "xlsx": XLSX_TYPE}


def stored_file(report: MonthlyReport, kind: str) -> Response:
    """A published version's file exactly as stored, named by scope, month and version."""
    body = {"html": report.html.encode("utf-8"), "csv": report.csv, "xlsx": report.xlsx}[kind]
    name = f"hcp-report-{report.scope_key.replace(':', '-')}-{report.month}-v{report.version}.{kind}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, max-age=86400, immutable",
        "X-Content-SHA256": report.artifact_sha256.get(kind, ""),
    }
    return Response(body, media_type=_FILES[kind], headers=headers)


@router.get("/{report_id}/report.{kind}", responses=error_responses(403, 404))
async def get_report_file(session: SessionDep, user: IndicatorUser, report_id: IdPath, kind: str) -> Response:
    """The stored HTML, CSV (UTF-8 with BOM) or XLSX of a published version."""
    if kind not in _FILES:
        return JSONResponse(
            status_code=404, content={"detail": {"code": "not_found", "message": f"没有 {kind} 格式的报告"}}
        )
    return stored_file(await visible_report(session, user, report_id), kind)
