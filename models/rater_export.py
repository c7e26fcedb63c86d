"""A rater's data export (个人信息查阅、复制): everything stored about the person who rated from one phone number.

The rater is found the way the suspicion detectors find them: by the keyed hash of their phone in
each rating's fingerprint (models/suspicion/keys.py), never by decrypting every row. An anonymised
rating has lost that hash, so once the retention job has run the export finds nothing of it.
What is exported is what the person gave and what they were shown: their ratings (with the contact
they left), each case's progress as their own page shows it, the notices sent to them and their
answers; a record's applicant contact only when it is the same phone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case, CaseEvent
from models.case.vocabulary import STAGE_LABELS_ZH
from models.notifications import Notification
from models.organisation import Unit
from models.rater_links import RaterLink
from models.ratings import LEVEL_LABELS_ZH, Rating
from models.services import ServiceItem, ServiceRecord
from models.suspicion.keys import phone_key
from models.suspicion.records import RatingFingerprint, channel_label

ANONYMISED_ZH = "已按规定匿名化"
# The timeline as the rater's own page tells it (pages/citizen/status.py): stages reached, never the findings.
_RATER_STEPS = {
    "opened": "已受理",
    "reopened": "已重新受理",
    "reassigned": "已转交承办单位",
    "verified": "已核实",
    "rectified": "已整改",
    "explained": "已解释说明",
    "cannot_rectify_approved": "已说明无法整改的原因",
    "feedback_written": "办理结果已反馈",
    "rater_responded": "您已确认",
    "closed": "已办结",
    "appeal_upheld": "不予采纳",
}


class ExportedStep(BaseModel):
    round: int
    step: str = Field(description="e.g. 已受理, 已核实, 办理结果已反馈")
    at: datetime
    message: str = Field(default="", description="the result text the unit wrote for the rater (反馈内容)")


class ExportedNotice(BaseModel):
    kind: str
    channel: str
    status: str
    created_at: datetime
    sent_at: datetime | None


class ExportedAnswer(BaseModel):
    round: int
    satisfied: bool | None
    comment: str
    answered_at: datetime | None


class ExportedCase(BaseModel):
    case_id: int
    stage: str
    outcome: str | None
    opened_at: datetime
    closed_at: datetime | None
    timeline: list[ExportedStep]
    answers: list[ExportedAnswer]
    notices: list[ExportedNotice]


class ExportedRating(BaseModel):
    rating_id: int
    record_no: str
    item_name: str
    unit_name: str
    completed_at: datetime
    applicant_phone: str | None = Field(description="the record's applicant phone, only when it is this phone")
    applicant_email: str | None = Field(description="the record's applicant email, with the phone above")
    level: str
    channel: str
    submitted_at: datetime
    comment: str
    answers: dict[str, Any]
    real_name: bool
    name: str | None
    phone: str | None
    email: str | None
    anonymised: str = Field(default="", description=f"{ANONYMISED_ZH} once the retention job has run")
    case: ExportedCase | None


class RaterExport(BaseModel):
    """Everything stored about one rater; empty when nothing is (or no longer is)."""

    ratings: list[ExportedRating]
    exported_at: datetime


def _digits(phone: str | None) -> str:
    return re.sub(r"\D", "", phone or "")[-11:]


async def rater_ratings(session: AsyncSession, signing_key: str, phone: str) -> list[Rating]:
    """The ratings left with this phone number, by their fingerprints' keyed hash."""
    key = phone_key(signing_key, phone)
    if key is None:
        return []
    return list(
        (
            await session.exec(
                select(Rating)
                .join(RatingFingerprint, col(RatingFingerprint.rating_id) == Rating.id)
                .where(RatingFingerprint.phone_key == key)
                .order_by(col(Rating.id))
            )
        ).all()
    )


async def _case_of(session: AsyncSession, case: Case) -> ExportedCase:
    events = (
        await session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(col(CaseEvent.id)))
    ).all()
    steps = [
        ExportedStep(
            round=event.round,
            step=_RATER_STEPS[event.action],
            at=event.at,
            message=str(event.data.get("message", "")) if event.action == "feedback_written" else "",
        )
        for event in events
        if event.action in _RATER_STEPS
    ]
    links = (
        await session.exec(select(RaterLink).where(RaterLink.case_id == case.id).order_by(col(RaterLink.round)))
    ).all()
    notices = (
        await session.exec(
            select(Notification)
            .where(Notification.case_id == case.id, Notification.recipient_ref == "rater")
            .order_by(col(Notification.id))
        )
    ).all()
    assert case.id is not None
    return ExportedCase(
        case_id=case.id,
        stage=STAGE_LABELS_ZH[case.stage],
        outcome=case.outcome.value if case.outcome else None,
        opened_at=case.opened_at,
        closed_at=case.closed_at,
        timeline=steps,
        answers=[
            ExportedAnswer(
                round=link.round, satisfied=link.answer_satisfied, comment=link.answer_comment, answered_at=link.used_at
            )
            for link in links
            if link.used_at is not None
        ],
        notices=[
            ExportedNotice(
                kind=n.kind, channel=n.channel.value, status=n.status.value, created_at=n.created_at, sent_at=n.sent_at
            )
            for n in notices
        ],
    )


async def export_rater(session: AsyncSession, signing_key: str, phone: str, now: datetime) -> RaterExport:
    """Everything stored about the rater with this phone number."""
    exported = []
    for rating in await rater_ratings(session, signing_key, phone):
        record = await session.get(ServiceRecord, rating.record_id)
        assert record is not None and rating.id is not None
        item, unit = await session.get(ServiceItem, record.item_id), await session.get(Unit, record.unit_id)
        same_person = bool(record.applicant_phone) and _digits(record.applicant_phone) == _digits(phone)
        case = (await session.exec(select(Case).where(Case.rating_id == (rating.lead_rating_id or rating.id)))).first()
        exported.append(
            ExportedRating(
                rating_id=rating.id,
                record_no=record.record_no,
                item_name=item.name if item else "",
                unit_name=unit.name if unit else "",
                completed_at=record.completed_at,
                applicant_phone=record.applicant_phone if same_person else None,
                applicant_email=record.applicant_email if same_person else None,
                level=LEVEL_LABELS_ZH[rating.level],
                channel=channel_label(rating.channel),
                submitted_at=rating.submitted_at,
                comment=rating.comment,
                answers=rating.answers,
                real_name=rating.real_name,
                name=rating.rater_name,
                phone=rating.rater_phone,
                email=rating.rater_email,
                anonymised=ANONYMISED_ZH if rating.anonymised_at else "",
                case=await _case_of(session, case) if case else None,
            )
        )
    return RaterExport(ratings=exported, exported_at=now)
