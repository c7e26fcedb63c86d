"""Notification activities: the overdue notice to supervisors and the feedback mail to the rater.

Each send is recorded in the notification table under a key built from case, kind, round and
recipient, so a retried activity never mails the same person twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.mailer import Mailer, RenderedMail
from config import Settings
from models.case_types import STAGE_LABELS_ZH, ActivityName, FeedbackNoticeInput, NoticeResult, OverdueNoticeInput
from models.cases import Case
from models.db import Database
from models.deadlines import CHINA_TZ
from models.notifications import Notification
from models.organisation import Unit
from models.ratings import LEVEL_LABELS_ZH, Rating
from models.services import ServiceItem, ServiceRecord
from models.users import Role, User


@dataclass(frozen=True)
class _CaseContext:
    case: Case
    rating: Rating
    record: ServiceRecord
    item: ServiceItem
    unit: Unit


class NotificationActivities:
    def __init__(self, db: Database, mailer: Mailer, settings: Settings) -> None:
        self._db = db
        self._mailer = mailer
        self._settings = settings

    @activity.defn(name=ActivityName.NOTIFY_CALLBACK_OVERDUE)
    async def notify_callback_overdue(self, inp: OverdueNoticeInput) -> NoticeResult:
        """Mail the supervisors of the unit above the responsible one (督办) that a deadline passed."""
        async with self._db.session() as session:
            ctx = await _load_context(session, inp.case_id)
            supervising_unit_id = ctx.unit.parent_id or ctx.unit.id
            supervisors = (
                await session.exec(
                    select(User).where(
                        User.role == Role.SUPERVISOR,
                        User.unit_id == supervising_unit_id,
                        User.active == True,  # noqa: E712 - SQL expression
                        User.email.is_not(None),  # type: ignore[union-attr]
                    )
                )
            ).all()
            if not supervisors:
                return NoticeResult(sent=False, reason=f"unit {supervising_unit_id} has no supervisor with an email")
            recipients = []
            for supervisor in supervisors:
                mail = self._mailer.render(
                    "callback_overdue",
                    supervisor_name=supervisor.display_name,
                    case_id=ctx.case.id,
                    unit_name=ctx.unit.name,
                    item_name=ctx.item.name,
                    record_no=ctx.record.record_no,
                    level_label=LEVEL_LABELS_ZH[ctx.rating.level],
                    stage_label=STAGE_LABELS_ZH[inp.stage],
                    due_at=inp.due_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
                    case_url=f"{self._settings.public_base_url}/api/v1/cases/{ctx.case.id}",
                )
                ref = f"user:{supervisor.id}"
                await self._send_once(
                    session,
                    ctx.case,
                    "callback_overdue",
                    ref,
                    supervisor.email or "",
                    mail,
                    f"case{ctx.case.id}.callback_overdue.{ref}",
                )
                recipients.append(ref)
            return NoticeResult(sent=True, recipients=recipients)

    @activity.defn(name=ActivityName.SEND_RATER_FEEDBACK)
    async def send_rater_feedback(self, inp: FeedbackNoticeInput) -> NoticeResult:
        """Mail the rectification result (反馈) to the rater, if they left an email address."""
        async with self._db.session() as session:
            ctx = await _load_context(session, inp.case_id)
            if not ctx.rating.rater_email:
                return NoticeResult(sent=False, reason="the rater left no email address")
            mail = self._mailer.render(
                "feedback",
                rater_name=ctx.rating.rater_name or "",
                case_id=ctx.case.id,
                unit_name=ctx.unit.name,
                item_name=ctx.item.name,
                record_no=ctx.record.record_no,
                rated_on=ctx.rating.submitted_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d"),
                level_label=LEVEL_LABELS_ZH[ctx.rating.level],
                message=inp.message,
            )
            await self._send_once(
                session,
                ctx.case,
                "feedback",
                "rater",
                ctx.rating.rater_email,
                mail,
                f"case{ctx.case.id}.feedback.r{inp.round}",
            )
            return NoticeResult(sent=True, recipients=["rater"])

    async def _send_once(
        self, session: AsyncSession, case: Case, kind: str, ref: str, address: str, mail: RenderedMail, key: str
    ) -> None:
        already = await session.exec(select(Notification.id).where(Notification.dedup_key == key))
        if already.first() is not None:
            return
        await self._mailer.send(address, mail, key)
        session.add(Notification(case_id=case.id, kind=kind, recipient_ref=ref, dedup_key=key))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()


async def _load_context(session: AsyncSession, case_id: int) -> _CaseContext:
    case = await session.get(Case, case_id)
    if case is None:
        raise RuntimeError(f"case {case_id} does not exist")
    rating = await session.get(Rating, case.rating_id)
    assert rating is not None
    record = await session.get(ServiceRecord, rating.record_id)
    assert record is not None
    item = await session.get(ServiceItem, record.item_id)
    unit = await session.get(Unit, case.unit_id)
    assert item is not None and unit is not None
    return _CaseContext(case=case, rating=rating, record=record, item=item, unit=unit)
