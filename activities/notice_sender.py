"""Sending notices (通知发送): claim a pending notice, render it, send it, record the outcome.

A notice is claimed for a lease (status `sending`, `claimed_until`) before it is sent, so two relays
never send it at once; a relay that dies mid-send leaves the claim to run out and the notice is sent
again by whoever claims it next, with the same Message-ID and the same answer link. Transient
failures are retried with backoff; a permanent one (the server refuses the recipient, a number that
cannot take a text) is recorded as failed and shown on the case — the case itself never waits.
Nothing here logs or stores an address or a phone number. A rating invitation (评价邀请) is a notice
about a record, not a case: its message comes from activities/invitation_notice.py.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import col, select

from activities.faults import crash_point
from activities.invitation_notice import invitation_message
from activities.mailer import Mailer, PermanentSendError, RenderedMail, SendError
from activities.root_cause_message import root_cause_message
from activities.sms import SmsGateway
from config import Settings
from models.case.context import CaseContext, load_case_context
from models.case.records import CaseEvent
from models.case.vocabulary import DEADLINE_LABELS_ZH, STAGE_LABELS_ZH, Stage
from models.db import Database, utcnow
from models.deadlines import CHINA_TZ
from models.notifications import NoticeChannel, NoticeStatus, Notification
from models.policy import DeadlineName
from models.policy_store import policy_version
from models.rater_links import FEEDBACK_RESPONSE, RaterLink
from models.ratings import LEVEL_LABELS_ZH
from models.users import User
from templating import template_environment

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=5)


def china_time(moment: datetime | str | None) -> str:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... up to five minutes between attempts."""
    return min(timedelta(seconds=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class NoticeSender:
    def __init__(self, db: Database, mailer: Mailer, sms: SmsGateway, settings: Settings) -> None:
        self._db = db
        self._mailer = mailer
        self._sms = sms
        self._settings = settings
        self._sms_templates = template_environment("sms", escape="never")

    async def due(self, limit: int = 100) -> list[int]:
        """Notices ready to be sent: pending and past their backoff, or claimed by a relay whose lease ran out."""
        now = utcnow()
        async with self._db.session() as session:
            rows = await session.exec(
                select(Notification.id).where(self._claimable(now)).order_by(col(Notification.id)).limit(limit)
            )
            return [row for row in rows.all() if row is not None]

    @staticmethod
    def _claimable(now: datetime) -> Any:
        return or_(
            and_(
                col(Notification.status) == NoticeStatus.PENDING,
                or_(col(Notification.next_attempt_at).is_(None), col(Notification.next_attempt_at) <= now),
            ),
            and_(col(Notification.status) == NoticeStatus.SENDING, col(Notification.claimed_until) < now),
        )

    async def claim(self, notice_id: int) -> bool:
        """Take the notice for one lease. False if it is not due or another relay has it."""
        now = utcnow()
        lease = timedelta(seconds=self._settings.notice_lease_seconds)
        statement = (
            update(Notification)
            .where(col(Notification.id) == notice_id, self._claimable(now))
            .values(status=NoticeStatus.SENDING, claimed_until=now + lease, attempts=col(Notification.attempts) + 1)
        )
        async with self._db.session() as session:
            result = await (await session.connection()).execute(statement)
            await session.commit()
            return result.rowcount == 1

    async def deliver(self, notice_id: int) -> NoticeStatus:
        """Send a claimed notice and record what happened (only while the claim is still this one)."""
        try:
            async with self._db.session() as session:
                notice = await session.get(Notification, notice_id)
                assert notice is not None
                try:
                    if notice.root_cause_id is not None:  # a root-cause rectification's notice to staff
                        address, render = await root_cause_message(session, notice, self._mailer, self._settings)
                    elif notice.case_id is None:  # a rating invitation: about a record, not a case
                        address, render = await invitation_message(
                            session, notice, self._mailer, self._sms_templates, self._settings
                        )
                    else:
                        address, render = await self._prepare(
                            session, notice, await load_case_context(session, notice.case_id)
                        )
                except PermanentSendError as exc:
                    return await self._failed(notice, str(exc))
        except Exception as exc:  # noqa: BLE001 - a notice that cannot even be prepared must not stall the relay
            return await self._retry_later_by_id(notice_id, type(exc).__name__)
        crash_point("notice.before_send")
        # A send that outlives its lease would race the relay that takes the notice over next.
        limit = max(self._settings.notice_lease_seconds - 5, 1)
        try:
            async with asyncio.timeout(limit):
                if notice.channel == NoticeChannel.EMAIL:
                    await self._mailer.send(address, render, notice.message_id)
                else:
                    await self._sms.send(address, render.text, notice.dedup_key)
        except PermanentSendError as exc:
            return await self._failed(notice, str(exc))
        except SendError as exc:
            return await self._retry_later(notice, str(exc))
        except Exception as exc:  # noqa: BLE001 - an unknown gateway error or our timeout: retry, say only its class
            return await self._retry_later(notice, type(exc).__name__)
        crash_point("notice.after_send")
        await self._set(notice, status=NoticeStatus.SENT, sent_at=utcnow(), claimed_until=None, last_error="")
        crash_point("notice.after_record")
        return NoticeStatus.SENT

    async def _prepare(self, session: Any, notice: Notification, ctx: CaseContext) -> tuple[str, RenderedMail]:
        """The address and the rendered message. PermanentSendError if the recipient has no way to be reached."""
        if notice.recipient_ref == "rater":
            return await self._prepare_feedback(session, notice, ctx)
        user = await session.get(User, int(notice.recipient_ref.removeprefix("user:")))
        if user is None or not user.active or not user.email:
            raise PermanentSendError("recipient has no active account with an email address")
        context = notice.context
        deadline = DeadlineName(context["deadline"]) if context.get("deadline") else None
        mail = self._mailer.render(
            f"notice_{notice.kind}",
            recipient_name=user.display_name,
            case_id=ctx.case.id,
            round=context.get("round", ctx.case.round),
            unit_name=ctx.unit.name,
            item_name=ctx.item.name,
            record_no=ctx.record.record_no,
            level_label=await _level_label(session, ctx),
            stage_label=STAGE_LABELS_ZH[Stage(context.get("stage") or ctx.case.stage)],
            deadline_label=DEADLINE_LABELS_ZH[deadline] if deadline else "",
            due_at=china_time(context.get("due_at")),
            rung=context.get("rung") or 0,
            message=context.get("message", ""),
            case_url=f"{self._settings.public_base_url}/cases/{ctx.case.id}",
        )
        return user.email, mail

    async def _prepare_feedback(self, session: Any, notice: Notification, ctx: CaseContext) -> tuple[str, RenderedMail]:
        rating, context = ctx.rating, notice.context
        address = rating.rater_email if notice.channel == NoticeChannel.EMAIL else rating.rater_phone
        if not address:
            raise PermanentSendError("the rater left no contact for this channel")
        values: dict[str, Any] = {
            "rater_name": rating.rater_name or "",
            "case_id": ctx.case.id,
            "unit_name": ctx.unit.name,
            "item_name": ctx.item.name,
            "record_no": ctx.record.record_no,
            "rated_on": rating.submitted_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d"),
            "level_label": await _level_label(session, ctx),
            "message": context.get("message", ""),
        }
        if notice.kind == "feedback":  # the result, with the round's answer link
            values |= await self._answer_link_values(session, ctx, context)
        # The template is named after the kind: feedback (with the link) or cannot_rectify (无法整改, no answer).
        if notice.channel == NoticeChannel.EMAIL:
            return address, self._mailer.render(notice.kind, **values)
        text = self._sms_templates.get_template(f"{notice.kind}.txt.j2").render(**values).strip()
        return address, RenderedMail(subject="", text=text, html="")

    async def _answer_link_values(self, session: Any, ctx: CaseContext, context: dict[str, Any]) -> dict[str, Any]:
        link = (
            await session.exec(
                select(RaterLink).where(
                    RaterLink.case_id == ctx.case.id,
                    RaterLink.round == context["round"],
                    RaterLink.purpose == FEEDBACK_RESPONSE,
                )
            )
        ).first()
        if link is None or not link.token_sealed:
            raise PermanentSendError("the round has no answer link")
        pinned = await policy_version(session, ctx.case.policy_code, ctx.case.policy_version)
        return {
            "link_url": f"{self._settings.public_base_url}/r/{link.token_sealed}",
            "respond_by": china_time(context.get("respond_by")),
            "silence_counts_as_satisfied": pinned is None or pinned.profile.rater_silence_outcome == "satisfied",
        }

    async def _retry_later_by_id(self, notice_id: int, error: str) -> NoticeStatus:
        async with self._db.session() as session:
            notice = await session.get(Notification, notice_id)
        if notice is None:
            return NoticeStatus.FAILED
        return await self._retry_later(notice, error)

    async def _retry_later(self, notice: Notification, error: str) -> NoticeStatus:
        log.warning(
            "notice %s (case %s, %s) not sent, will retry: %s",
            notice.id,
            notice.case_id,
            notice.kind,
            error,
            extra={"case_id": notice.case_id},
        )
        await self._set(
            notice,
            status=NoticeStatus.PENDING,
            next_attempt_at=utcnow() + backoff(notice.attempts + 1),
            claimed_until=None,
            last_error=error[:500],
        )
        return NoticeStatus.PENDING

    async def _failed(self, notice: Notification, error: str) -> NoticeStatus:
        """A notice that can never go out this way: recorded as failed, and on the case's timeline."""
        log.warning(
            "notice %s (case %s, %s) failed for good: %s",
            notice.id,
            notice.case_id,
            notice.kind,
            error,
            extra={"case_id": notice.case_id},
        )
        async with self._db.session() as session:
            result = await (await session.connection()).execute(
                update(Notification)
                .where(*self._still_ours(notice))
                .values(status=NoticeStatus.FAILED, claimed_until=None, last_error=error[:500])
            )
            if result.rowcount != 1:  # another relay took the notice over meanwhile: its outcome stands
                await session.rollback()
                return NoticeStatus.FAILED
            if notice.case_id is None:  # a rating invitation or a root-cause notice: no case to show it on
                await session.commit()
                return NoticeStatus.FAILED
            ctx = await load_case_context(session, notice.case_id)
            key = f"notice-{notice.id}-failed"
            exists = (
                await session.exec(
                    select(CaseEvent.id).where(CaseEvent.case_id == notice.case_id, CaseEvent.event_key == key)
                )
            ).first()
            if exists is None:
                session.add(
                    CaseEvent(
                        case_id=notice.case_id,
                        event_key=key,
                        stage=ctx.case.stage,
                        round=ctx.case.round,
                        action="notice_failed",
                        actor="system",
                        at=utcnow(),
                        data={
                            "kind": notice.kind,
                            "channel": notice.channel.value,
                            "recipient": notice.recipient_ref,
                            "error": error[:500],
                        },
                    )
                )
            await session.commit()
        return NoticeStatus.FAILED

    @staticmethod
    def _still_ours(notice: Notification) -> list[Any]:
        """Conditions true only while the claim this relay made (the attempt it counted) still holds."""
        return [
            col(Notification.id) == notice.id,
            col(Notification.status) == NoticeStatus.SENDING,
            col(Notification.attempts) == notice.attempts,
        ]

    async def _set(self, notice: Notification, **values: Any) -> None:
        """Record an outcome, unless another relay has taken the notice over since (then its outcome stands)."""
        async with self._db.session() as session:
            await (await session.connection()).execute(
                update(Notification).where(*self._still_ours(notice)).values(**values)
            )
            await session.commit()


async def _level_label(session: Any, ctx: CaseContext) -> str:
    """The rating's level in the words of the case's pinned profile (很差 nationally, 非常不满意 in Yantai)."""
    pinned = await policy_version(session, ctx.case.policy_code, ctx.case.policy_version)
    if pinned is None:
        return LEVEL_LABELS_ZH[ctx.rating.level]
    return pinned.profile.level(ctx.rating.level.value).label
