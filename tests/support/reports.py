"""Monthly reports and disclosures in tests: one of each planted for the authorization matrices, and helpers."""

from __future__ import annotations

from collections import Counter

from sqlmodel import col, select

from models.audit import AuditEvent
from models.db import Database
from models.disclosure import RectificationDisclosure
from models.reports.publish import Rendered, canonical_json, sha256_hex
from models.reports.records import MonthlyReport


async def plant_report(db: Database, unit_id: int = 2, published_by: int = 2) -> int:
    """A published version of unit 2's January 2025 (reads, corrections and scope only)."""
    figures = canonical_json({"title": "市场监管局 2025年1月政务服务“好差评”月度报告"})
    rendered = Rendered("<article>planted</article>", b"\xef\xbb\xbfplanted", b"PK planted")
    async with db.session() as session:
        row = MonthlyReport(
            scope_key=f"unit:{unit_id}", unit_id=unit_id, month="2025-01", version=1, title="市场监管局 2025年1月",
            figures=figures, html=rendered.html, csv=rendered.csv, xlsx=rendered.xlsx,
            content_sha256=sha256_hex(figures), artifact_sha256={}, published_by=published_by,
        )  # fmt: skip
        session.add(row)
        await session.commit()
        assert row.id is not None
        return row.id


async def plant_disclosure(db: Database, case_id: int = 1, unit_id: int = 2) -> int:
    """A pending, clean rectification text of unit 2's case 1."""
    async with db.session() as session:
        row = RectificationDisclosure(
            case_id=case_id, unit_id=unit_id, item_id=1, month="2025-01", proposed="整改措施：增开两个窗口"
        )
        session.add(row)
        await session.commit()
        assert row.id is not None
        return row.id


async def audit_counts(db: Database, prefix: str) -> Counter[str]:
    async with db.session() as session:
        rows = await session.exec(select(AuditEvent.action).where(col(AuditEvent.action).startswith(prefix)))
        return Counter(rows.all())
