"""整改情况公开 over HTTP: the month's rectification texts, checked, and a supervisor's decision on each.

A closed case's rectification and feedback text is put through the redaction check when the queue is
read (models/disclosure.py); nothing is public until a supervisor over the unit approves a text that
passes the check again, or withholds it. Every decision is audited. docs/reports.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep, audit_user_action, visible_unit_ids
from api.errors import api_error, error_responses
from api.indicator_scope import IndicatorUser
from api.params import IdPath, OptionalIdQuery
from api.rankings import MonthQuery, parse_month, resolve_scope
from api.reports import PUBLISHERS
from models.db import utcnow
from models.disclosure import (
    MAX_TEXT,
    STATUS_LABELS_ZH,
    DisclosureStatus,
    RectificationDisclosure,
    check_for_case,
    collect,
)
from models.disclosure_check import FINDING_LABELS_ZH, FindingKind
from models.organisation import Unit
from models.rankings import month_period
from models.request_body import RequestBody
from models.roles import Role
from models.services import ServiceItem
from models.users import User

router = APIRouter(prefix="/api/v1/disclosures", tags=["reports"])


class FindingRead(BaseModel):
    kind: FindingKind
    label: str
    count: int


class DisclosureRead(BaseModel):
    id: int
    case_id: int
    unit_id: int
    unit_name: str
    item_name: str
    month: str
    proposed: str = Field(description="the unit's text with every finding of the redaction check masked")
    findings: list[FindingRead] = Field(description="what the check found (kinds and counts, never the values)")
    status: DisclosureStatus
    status_label: str
    public_text: str
    reviewed_at: datetime | None
    review_note: str


class DisclosureDecision(RequestBody):
    decision: Literal["approve", "withhold"]
    text: str | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT, description="the text to publish (default: the proposal)"
    )
    note: str = Field(default="", max_length=500)


def reviewer_of_disclosures(user: User) -> User:
    if user.role not in PUBLISHERS:
        raise api_error(403, "not_supervisor", "只有督办人员和系统管理员可以查看整改情况公开审核")
    return user


async def disclosure_reader(user: IndicatorUser) -> User:
    return reviewer_of_disclosures(user)


def decider(user: User) -> User:
    if user.role != Role.SUPERVISOR:
        raise api_error(403, "not_supervisor", "整改情况公开由督办人员审核")
    return user


async def disclosure_decider(user: IndicatorUser) -> User:
    return decider(user)


DisclosureReader = Annotated[User, Depends(disclosure_reader)]
DisclosureDecider = Annotated[User, Depends(disclosure_decider)]


async def disclosure_list(
    session: AsyncSession, user: User, month: str, unit_id: int | None, status: DisclosureStatus | None
) -> list[DisclosureRead]:
    """Brings the month's queue up to date (new closed cases get a checked row), then lists it."""
    reviewer_of_disclosures(user)
    scope, _ = await resolve_scope(session, user, unit_id, None)
    try:
        if await collect(session, scope.units, month_period(month)):
            await session.commit()
    except IntegrityError:  # another reader collected the same case at the same moment: theirs stands
        await session.rollback()
    query = (
        select(RectificationDisclosure, Unit.name, ServiceItem.name)
        .join(Unit, col(Unit.id) == RectificationDisclosure.unit_id)
        .join(ServiceItem, col(ServiceItem.id) == RectificationDisclosure.item_id)
        .where(RectificationDisclosure.month == month, col(RectificationDisclosure.unit_id).in_(sorted(scope.units)))
        .order_by(col(RectificationDisclosure.case_id))
    )
    if status is not None:
        query = query.where(RectificationDisclosure.status == status)
    return [disclosure_read(row, unit, item) for row, unit, item in (await session.exec(query)).all()]


def disclosure_read(row: RectificationDisclosure, unit: str, item: str) -> DisclosureRead:
    assert row.id is not None
    findings = [
        FindingRead(kind=FindingKind(f["kind"]), label=FINDING_LABELS_ZH[FindingKind(f["kind"])], count=f["count"])
        for f in row.findings
    ]
    return DisclosureRead(
        id=row.id, case_id=row.case_id, unit_id=row.unit_id, unit_name=unit, item_name=item, month=row.month,
        proposed=row.proposed, findings=findings, status=row.status, status_label=STATUS_LABELS_ZH[row.status],
        public_text=row.public_text, reviewed_at=row.reviewed_at, review_note=row.review_note,
    )  # fmt: skip


async def decide_disclosure(
    session: AsyncSession, request: Request, user: User, disclosure_id: int, body: DisclosureDecision
) -> RectificationDisclosure:
    """Approve (the text must pass the check again) or withhold; a supervisor over the unit. Audited."""
    decider(user)
    visible = await visible_unit_ids(session, user)
    row = await session.get(RectificationDisclosure, disclosure_id)
    if row is None or (visible is not None and row.unit_id not in visible):
        raise api_error(404, "not_found", f"整改公开记录 {disclosure_id} 不存在或无权查看")
    before = {"status": row.status.value}
    if body.decision == "approve":
        text = (body.text if body.text is not None else row.proposed).strip()
        result = await check_for_case(session, row, text)
        if not text or not result.clean:
            found = result.summary_zh() or "空文本"
            raise api_error(422, "redaction_failed", f"文本仍含个人信息（{found}），请删除后再公开", field="text")
        row.status, row.public_text = DisclosureStatus.APPROVED, text
    else:
        row.status, row.public_text = DisclosureStatus.WITHHELD, ""
    row.reviewed_by, row.reviewed_at, row.review_note = user.id, utcnow(), body.note
    session.add(row)
    audit_user_action(session, request, user, f"disclosure.{row.status.value}", "rectification_disclosure", row.id,
                      unit_id=row.unit_id, reason=body.note, before=before, after={"status": row.status.value})  # fmt: skip
    await session.commit()
    return row


@router.get("", response_model=list[DisclosureRead], responses=error_responses(403, 422))
async def list_disclosures(
    session: SessionDep, user: DisclosureReader, month: MonthQuery, unit_id: OptionalIdQuery = None,
    status: DisclosureStatus | None = None,
) -> list[DisclosureRead]:  # fmt: skip
    """A month's rectification texts in the caller's scope, checked, with their review status (督办 and admins)."""
    return await disclosure_list(session, user, parse_month(month), unit_id, status)


@router.post("/{disclosure_id}/decision", response_model=DisclosureRead, responses=error_responses(403, 404, 422))
async def post_disclosure_decision(
    request: Request, session: SessionDep, user: DisclosureDecider, disclosure_id: IdPath, body: DisclosureDecision
) -> DisclosureRead:
    """公开 or 不予公开 one text. An approved text is checked again: any personal data left is a 422."""
    row = await decide_disclosure(session, request, user, disclosure_id, body)
    unit = await session.get(Unit, row.unit_id)
    item = await session.get(ServiceItem, row.item_id)
    return disclosure_read(row, unit.name if unit else "", item.name if item else "")
