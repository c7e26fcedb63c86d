"""整改情况公开: each bad review's rectification as published text, checked for personal data and reviewed first.

A closed case with a rectification (整改措施) or an explanation (解释说明) gets one disclosure row: the
unit's text and its feedback to the rater (反馈), as the case's timeline holds them, put through the
redaction check (models/disclosure_check.py) with the rater's own name, phone and email. The row keeps
only the masked proposal and what was found (kinds and counts). Nothing is public until a supervisor
over the unit approves a text, and an approved text must pass the check again; a supervisor may also
withhold it. The public pages show approved texts only (pages/citizen/public.py).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case, CaseEvent
from models.case.vocabulary import Stage
from models.db import UTCDateTime, str_enum, utcnow
from models.deadlines import CHINA_TZ
from models.disclosure_check import CheckResult, KnownRater, check_text
from models.indicators.periods import Period
from models.ratings import Rating
from models.services import ServiceRecord

MAX_TEXT = 8000
# The timeline events whose text is the rectification, the explanation and the feedback (workflows/case/unit_steps.py).
_TEXT_OF = {"rectified": "measures", "explained": "explanation", "feedback_written": "message"}
_HEADINGS = {"rectified": "整改措施", "explained": "解释说明", "feedback_written": "反馈内容"}


class DisclosureStatus(StrEnum):
    PENDING = "pending"  # 待审核: checked, waiting for a supervisor
    APPROVED = "approved"  # 已公开: the approved text is public
    WITHHELD = "withheld"  # 不予公开: a supervisor decided it is not published


STATUS_LABELS_ZH = {
    DisclosureStatus.PENDING: "待审核",
    DisclosureStatus.APPROVED: "已公开",
    DisclosureStatus.WITHHELD: "不予公开",
}


class RectificationDisclosure(SQLModel, table=True):
    """One case's rectification as it may be published. No rater data: the proposal is masked, findings are counts."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", unique=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    item_id: int = Field(foreign_key="serviceitem.id")
    month: str = Field(max_length=7, index=True, description="the China month the case opened, YYYY-MM")
    proposed: str = Field(max_length=MAX_TEXT, description="the unit's text with every finding masked")
    findings: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False), description="[{kind, count}]"
    )
    status: DisclosureStatus = Field(default=DisclosureStatus.PENDING, index=True, sa_type=str_enum(DisclosureStatus))
    public_text: str = Field(default="", max_length=MAX_TEXT, description="the approved text; empty until approved")
    reviewed_by: int | None = Field(default=None, foreign_key="user.id")
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    review_note: str = Field(default="", max_length=500)
    collected_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def case_month(opened_at: datetime) -> str:
    return opened_at.astimezone(CHINA_TZ).strftime("%Y-%m")


def compose(events: list[CaseEvent]) -> str:
    """The texts to publish from a case's timeline: the last rectification or explanation, and the last feedback."""
    latest: dict[str, str] = {}
    for event in events:  # in order: a later round's text replaces an earlier one
        field_name = _TEXT_OF.get(event.action)
        text = str(event.data.get(field_name, "")).strip() if field_name else ""
        if text:
            key = "feedback_written" if event.action == "feedback_written" else "action"
            latest[key] = f"{_HEADINGS[event.action]}：{text}"
    return "\n".join(latest[key] for key in ("action", "feedback_written") if key in latest)


async def known_rater(session: AsyncSession, rating_id: int) -> KnownRater:
    """The rater's name, phone and email, decrypted for the check only (never stored with the disclosure)."""
    rating = await session.get(Rating, rating_id)
    if rating is None:
        return KnownRater()
    return KnownRater(name=rating.rater_name, phone=rating.rater_phone, email=rating.rater_email)


async def collect(session: AsyncSession, units: frozenset[int] | None, period: Period) -> int:
    """A checked, pending row for each closed case of the period with a text and no row yet; how many (caller commits)."""
    start, end = period.bounds
    have = select(RectificationDisclosure.case_id)
    query = (
        select(Case, ServiceRecord.item_id)
        .join(Rating, col(Rating.id) == Case.rating_id)
        .join(ServiceRecord, col(ServiceRecord.id) == Rating.record_id)
        .where(
            col(Case.stage) == Stage.CLOSED,
            col(Rating.adopted).is_(True),
            col(Case.opened_at) >= start,
            col(Case.opened_at) < end,
            col(Case.id).not_in(have),
        )
        .order_by(col(Case.id))
    )
    if units is not None:
        query = query.where(col(Case.unit_id).in_(sorted(units)))
    added = 0
    for case, item_id in (await session.exec(query)).all():
        assert case.id is not None
        events = (
            await session.exec(
                select(CaseEvent)
                .where(CaseEvent.case_id == case.id, col(CaseEvent.action).in_(list(_TEXT_OF)))
                .order_by(col(CaseEvent.id))
            )
        ).all()
        text = compose(list(events))
        if not text:
            continue  # closed with nothing to publish (not adopted, cannot rectify without explanation …)
        result = check_text(text, await known_rater(session, case.rating_id))
        session.add(
            RectificationDisclosure(
                case_id=case.id,
                unit_id=case.unit_id,
                item_id=item_id,
                month=case_month(case.opened_at),
                proposed=result.masked[:MAX_TEXT],
                findings=[{"kind": f.kind.value, "count": f.count} for f in result.findings],
            )
        )
        added += 1
    return added


async def check_for_case(session: AsyncSession, disclosure: RectificationDisclosure, text: str) -> CheckResult:
    """The check of a text a supervisor is about to approve, with the case's rater."""
    case = await session.get(Case, disclosure.case_id)
    rater = await known_rater(session, case.rating_id) if case is not None else KnownRater()
    return check_text(text, rater)
