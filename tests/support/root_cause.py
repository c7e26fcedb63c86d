"""Root-cause rectifications in tests: one planted for the authorization matrices, and the rows a test counts."""

from __future__ import annotations

from collections import Counter

from sqlmodel import col, select

from models.audit import AuditEvent
from models.case.records import CaseEvent
from models.db import Database, utcnow
from models.root_cause import RootCauseEvent, RootCauseLink, RootCauseRectification
from models.root_cause_io import RootCauseStage


async def plant_root_cause(db: Database, case_id: int = 1, unit_id: int = 2, opened_by: int = 2) -> int:
    """A rectification of unit 2 over one case, as if its workflow had started (reads and scope only)."""
    async with db.session() as session:
        row = RootCauseRectification(
            workflow_id="planted-root-cause-1",
            unit_id=unit_id,
            opened_by=opened_by,
            title="窗口排队时间长",
            problem="多名评价人反映排队时间长",
            stage=RootCauseStage.RECTIFYING,
            policy_code="national",
            policy_version=1,
            within="20wd",
            workflow_started_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        assert row.id is not None
        session.add(RootCauseLink(rectification_id=row.id, case_id=case_id, open_case_id=case_id))
        await session.commit()
        return row.id


async def root_cause_actions(db: Database, rectification_id: int) -> list[str]:
    async with db.session() as session:
        rows = await session.exec(
            select(RootCauseEvent.action)
            .where(RootCauseEvent.rectification_id == rectification_id)
            .order_by(col(RootCauseEvent.id))
        )
        return list(rows.all())


async def audit_actions(db: Database, prefix: str = "root_cause.") -> Counter[str]:
    async with db.session() as session:
        rows = await session.exec(select(AuditEvent.action).where(col(AuditEvent.action).startswith(prefix)))
        return Counter(rows.all())


async def case_actions(db: Database, case_id: int, action: str) -> list[CaseEvent]:
    async with db.session() as session:
        rows = await session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == action))
        return list(rows.all())


async def open_links(db: Database) -> list[int]:
    async with db.session() as session:
        rows = await session.exec(
            select(RootCauseLink.open_case_id).where(col(RootCauseLink.open_case_id).is_not(None))
        )
        return [r for r in rows.all() if r is not None]
