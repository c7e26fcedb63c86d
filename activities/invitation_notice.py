"""A rating invitation's message (评价邀请): the address from the record, the link from its invitation.

The text names nothing about the person or the transaction (a text message is read on a locked
phone screen): only the link and until when it works. The link is the invitation's sealed token, so
every attempt sends the same link.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from sqlmodel import select

from activities.mailer import Mailer, PermanentSendError, RenderedMail
from config import Settings
from models.deadlines import clock_text_zh
from models.notifications import NoticeChannel, Notification
from models.rating_invitations import RatingInvitation
from models.ratings import Rating
from models.services import ServiceRecord
from pages.citizen.qr import rating_url


async def invitation_message(
    session: Any, notice: Notification, mailer: Mailer, sms_templates: Environment, settings: Settings
) -> tuple[str, RenderedMail]:
    """The address and the message of an invitation notice; PermanentSendError if it cannot or need not go."""
    record = await session.get(ServiceRecord, notice.record_id)
    invitation = await session.get(RatingInvitation, notice.context.get("invitation_id"))
    if record is None or invitation is None or invitation.token_sealed is None:
        raise PermanentSendError("the invitation's record or link is missing")
    rated = (await session.exec(select(Rating.id).where(Rating.record_id == record.id).limit(1))).first()
    if rated is not None or invitation.used_at is not None:
        raise PermanentSendError("rated before the invitation went out (已评价，无需邀请)")
    address = record.applicant_phone if notice.channel == NoticeChannel.SMS else record.applicant_email
    if not address:
        raise PermanentSendError("the applicant left no contact for this channel")
    values = {
        "link_url": rating_url(settings, invitation.token_sealed),
        "valid_until": clock_text_zh(invitation.expires_at),
    }
    if notice.channel == NoticeChannel.EMAIL:
        return address, mailer.render(notice.kind, **values)
    text = sms_templates.get_template(f"{notice.kind}.txt.j2").render(**values).strip()
    return address, RenderedMail(subject="", text=text, html="")
