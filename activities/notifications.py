"""Notification activities: case notices to staff, supervisors and reviewers; the feedback to the rater.

Each send is recorded in the notification table under a key built from case, notice key and
recipient, so a retried activity never mails the same person twice. Recipients are resolved here,
from the database: the workflow only says which audience.
"""

from __future__ import annotations

from datetime import datetime

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.mailer import Mailer, RenderedMail
from activities.sms import SmsGateway
from config import PROJECT_ROOT, Settings
from models.case_activity_types import Audience, FeedbackNoticeInput, NoticeResult, NotifyInput
from models.case_context import load_case_context
from models.case_types import DEADLINE_LABELS_ZH, STAGE_LABELS_ZH, ActivityName
from models.cases import Case
from models.db import Database
from models.deadlines import CHINA_TZ
from models.notifications import Notification
from models.organisation import Unit
from models.policy_store import policy_version
from models.rater_links import FEEDBACK_RESPONSE, RaterLink, new_token
from models.ratings import LEVEL_LABELS_ZH
from models.roles import Role
from models.users import User


def _china_time(moment: datetime | None) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


class NotificationActivities:
    def __init__(self, db: Database, mailer: Mailer, sms: SmsGateway, settings: Settings) -> None:
        self._db = db
        self._mailer = mailer
        self._sms = sms
        self._settings = settings
        self._sms_templates = SandboxedEnvironment(
            loader=FileSystemLoader(PROJECT_ROOT / "templates" / "sms"), undefined=StrictUndefined, autoescape=False
        )

    @activity.defn(name=ActivityName.NOTIFY)
    async def notify(self, inp: NotifyInput) -> NoticeResult:
        """Mail one audience about a case, from templates/email/notice_<kind>.txt.j2."""
        async with self._db.session() as session:
            ctx = await load_case_context(session, inp.case_id)
            recipients = await _audience(session, inp.audience, ctx.unit)
            if not recipients:
                return NoticeResult(
                    sent=False, reason=f"no {inp.audience} with an email address for unit {ctx.unit.id}"
                )
            refs = []
            for user in recipients:
                mail = self._mailer.render(
                    f"notice_{inp.kind}",
                    recipient_name=user.display_name,
                    case_id=ctx.case.id,
                    round=inp.round,
                    unit_name=ctx.unit.name,
                    item_name=ctx.item.name,
                    record_no=ctx.record.record_no,
                    level_label=LEVEL_LABELS_ZH[ctx.rating.level],
                    stage_label=STAGE_LABELS_ZH[inp.stage],
                    deadline_label=DEADLINE_LABELS_ZH[inp.deadline] if inp.deadline else "",
                    due_at=_china_time(inp.due_at),
                    rung=inp.rung or 0,
                    message=inp.message,
                    case_url=f"{self._settings.public_base_url}/api/v1/cases/{ctx.case.id}",
                )
                ref = f"user:{user.id}"
                await self._mail_once(session, ctx.case, inp.kind, ref, user.email or "", mail, f"{inp.key}.{ref}")
                refs.append(ref)
            return NoticeResult(sent=True, recipients=refs, channels=["email"])

    @activity.defn(name=ActivityName.SEND_RATER_FEEDBACK)
    async def send_rater_feedback(self, inp: FeedbackNoticeInput) -> NoticeResult:
        """Send the result (反馈) to the rater by email and SMS, with a one-time link to answer."""
        async with self._db.session() as session:
            ctx = await load_case_context(session, inp.case_id)
            rating = ctx.rating
            if not (rating.rater_email or rating.rater_phone):
                return NoticeResult(sent=False, reason="the rater left no contact")
            key = f"case{ctx.case.id}.feedback.r{inp.round}"
            if await _already_sent(session, f"{key}.rater"):
                return NoticeResult(sent=True, recipients=["rater"], reason="already sent")
            link_url = await self._fresh_link(session, ctx.case, inp)
            pinned = await policy_version(session, ctx.case.policy_code, ctx.case.policy_version)
            context = {
                "rater_name": rating.rater_name or "",
                "case_id": ctx.case.id,
                "unit_name": ctx.unit.name,
                "item_name": ctx.item.name,
                "record_no": ctx.record.record_no,
                "rated_on": rating.submitted_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d"),
                "level_label": LEVEL_LABELS_ZH[rating.level],
                "message": inp.message,
                "link_url": link_url,
                "respond_by": _china_time(inp.respond_by),
                "silence_counts_as_satisfied": pinned is None or pinned.profile.rater_silence_outcome == "satisfied",
            }
            channels = []
            if rating.rater_email:
                await self._mailer.send(rating.rater_email, self._mailer.render("feedback", **context), key)
                channels.append("email")
            if rating.rater_phone:
                text = self._sms_templates.get_template("feedback.txt.j2").render(**context).strip()
                await self._sms.send(rating.rater_phone, text, key)
                channels.append("sms")
            session.add(
                Notification(case_id=ctx.case.id, kind="feedback", recipient_ref="rater", dedup_key=f"{key}.rater")
            )
            await session.commit()
            return NoticeResult(sent=True, recipients=["rater"], channels=channels)

    async def _fresh_link(self, session: AsyncSession, case: Case, inp: FeedbackNoticeInput) -> str:
        """A new one-time answer link for this round (a retry replaces the token it could not deliver)."""
        token, token_hash = new_token()
        link = (
            await session.exec(
                select(RaterLink).where(
                    RaterLink.case_id == case.id, RaterLink.round == inp.round, RaterLink.purpose == FEEDBACK_RESPONSE
                )
            )
        ).first()
        assert case.id is not None and inp.respond_by is not None
        if link is None:
            link = RaterLink(
                case_id=case.id,
                round=inp.round,
                purpose=FEEDBACK_RESPONSE,
                token_hash=token_hash,
                expires_at=inp.respond_by,
            )
        link.token_hash, link.expires_at = token_hash, inp.respond_by
        session.add(link)
        await session.commit()
        return f"{self._settings.public_base_url}/r/{token}"

    async def _mail_once(
        self, session: AsyncSession, case: Case, kind: str, ref: str, address: str, mail: RenderedMail, key: str
    ) -> None:
        if await _already_sent(session, key):
            return
        await self._mailer.send(address, mail, key)
        session.add(Notification(case_id=case.id, kind=kind, recipient_ref=ref, dedup_key=key))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()


async def _already_sent(session: AsyncSession, key: str) -> bool:
    return (await session.exec(select(Notification.id).where(Notification.dedup_key == key))).first() is not None


async def _audience(session: AsyncSession, audience: Audience, unit: Unit) -> list[User]:
    """The people an audience means for a case of this unit."""
    if audience == "reviewers":
        condition = User.role == Role.REVIEWER
    elif audience == "unit_staff":
        condition = (User.role == Role.UNIT_STAFF) & (User.unit_id == unit.id)
    else:
        target = unit.parent_id or unit.id
        if audience == "management_office":
            target = await _root_unit_id(session, unit)
        condition = (User.role == Role.SUPERVISOR) & (User.unit_id == target)
    query = select(User).where(condition, User.active == True, col(User.email).is_not(None))  # noqa: E712
    return list((await session.exec(query.order_by(col(User.id)))).all())


async def _root_unit_id(session: AsyncSession, unit: Unit) -> int:
    """The top of the unit's tree: the government-service management office (政务服务管理机构)."""
    current = unit
    while current.parent_id is not None:
        parent = await session.get(Unit, current.parent_id)
        assert parent is not None
        current = parent
    assert current.id is not None
    return current.id
