"""Publishing a monthly report (发布) and correcting it (更正): each is a new frozen version, none is changed.

The first publication of a scope's month is version 1; publishing it again is refused (already
published). A correction names the version it corrects (the latest one) and why, and becomes the next
version; the older stays as it was. Two people publishing at once: the unique (scope, month, version)
lets one through and the other is told it is already published.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.reports.figures import ReportScope
from models.reports.records import MonthlyReport, ReportVersionRead


class AlreadyPublished(Exception):
    """The month is published for the scope; a change is a correction of its latest version."""


class NotLatest(Exception):
    """Only the latest version is corrected (a correction of an older one would fork the history)."""


@dataclass(frozen=True)
class Rendered:
    html: str
    csv: bytes
    xlsx: bytes


def canonical_json(figures: dict[str, Any]) -> str:
    """The one text of a figures dict: sorted keys, no spaces, Chinese as it is."""
    return json.dumps(figures, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_hex(data: str | bytes) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


async def latest_version(session: AsyncSession, scope_key: str, month: str) -> MonthlyReport | None:
    query = (
        select(MonthlyReport)
        .where(MonthlyReport.scope_key == scope_key, MonthlyReport.month == month)
        .order_by(col(MonthlyReport.version).desc())
    )
    return (await session.exec(query)).first()


async def store_version(
    session: AsyncSession,
    scope: ReportScope,
    month: str,
    figures_json: str,
    rendered: Rendered,
    user_id: int,
    corrects: MonthlyReport | None = None,
    reason: str = "",
) -> MonthlyReport:
    """Add the next version (the caller commits with its audit record); AlreadyPublished or NotLatest if not allowed."""
    latest = await latest_version(session, scope.key, month)
    if corrects is None and latest is not None:
        raise AlreadyPublished
    if corrects is not None and (latest is None or latest.id != corrects.id):
        raise NotLatest
    figures = json.loads(figures_json)
    report = MonthlyReport(
        scope_key=scope.key,
        unit_id=scope.unit_id,
        region_id=scope.region_id,
        month=month,
        version=(latest.version + 1) if latest is not None else 1,
        corrects_id=corrects.id if corrects is not None else None,
        correction_reason=reason,
        title=str(figures["title"])[:200],
        figures=figures_json,
        html=rendered.html,
        csv=rendered.csv,
        xlsx=rendered.xlsx,
        content_sha256=sha256_hex(figures_json),
        artifact_sha256={
            "html": sha256_hex(rendered.html),
            "csv": sha256_hex(rendered.csv),
            "xlsx": sha256_hex(rendered.xlsx),
        },
        published_by=user_id,
    )
    session.add(report)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise AlreadyPublished from None
    return report


async def versions(session: AsyncSession, scope_key: str, month: str | None = None) -> list[MonthlyReport]:
    """A scope's published versions (of one month, or all), newest month and version first."""
    query = select(MonthlyReport).where(MonthlyReport.scope_key == scope_key)
    if month is not None:
        query = query.where(MonthlyReport.month == month)
    query = query.order_by(col(MonthlyReport.month).desc(), col(MonthlyReport.version).desc())
    return list((await session.exec(query)).all())


async def corrected_by(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    """Which version corrects each of these (id → the correcting version's id)."""
    if not ids:
        return {}
    query = select(col(MonthlyReport.corrects_id), func.min(col(MonthlyReport.id))).where(
        col(MonthlyReport.corrects_id).in_(ids)
    )
    rows = (await session.exec(query.group_by(col(MonthlyReport.corrects_id)))).all()
    return {old: int(new) for old, new in rows if old is not None and new is not None}


def version_read(report: MonthlyReport, corrected: dict[int, int], base: str = "/api/v1/reports") -> ReportVersionRead:
    assert report.id is not None
    return ReportVersionRead(
        id=report.id,
        scope_key=report.scope_key,
        month=report.month,
        version=report.version,
        title=report.title,
        corrects_id=report.corrects_id,
        corrected_by_id=corrected.get(report.id),
        correction_reason=report.correction_reason,
        content_sha256=report.content_sha256,
        artifact_sha256=report.artifact_sha256,
        published_by=report.published_by,
        published_at=report.published_at,
        links={
            "self": f"{base}/{report.id}",
            "html": f"{base}/{report.id}/report.html",
            "csv": f"{base}/{report.id}/report.csv",
            "xlsx": f"{base}/{report.id}/report.xlsx",
        },
    )
