"""A root-cause rectification's email to staff (根源整改通知): the address from the account, the words from its template.

The notice sender (activities/notice_sender.py) calls this for a notice that names a rectification
(`root_cause_id`); the template is templates/email/<kind>.txt.j2 (first line "Subject: ...").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from activities.mailer import Mailer, PermanentSendError, RenderedMail
from config import Settings
from models.deadlines import clock_text_zh
from models.notifications import Notification
from models.organisation import Unit
from models.root_cause import RootCauseLink, RootCauseRectification
from models.root_cause_io import ROOT_CAUSE_STAGE_LABELS_ZH, RootCauseStage
from models.users import User


async def root_cause_message(
    session: Any, notice: Notification, mailer: Mailer, settings: Settings
) -> tuple[str, RenderedMail]:
    """The address and the rendered email of a rectification's notice; PermanentSendError if nobody can get it."""
    user = await session.get(User, int(notice.recipient_ref.removeprefix("user:")))
    if user is None or not user.active or not user.email:
        raise PermanentSendError("recipient has no active account with an email address")
    row = await session.get(RootCauseRectification, notice.root_cause_id)
    if row is None:
        raise PermanentSendError("the root-cause rectification is gone")
    unit = await session.get(Unit, row.unit_id)
    cases = (
        await session.exec(
            select(func.count()).select_from(RootCauseLink).where(RootCauseLink.rectification_id == row.id)
        )
    ).one()
    context = notice.context
    due_at = context.get("due_at")
    mail = mailer.render(
        notice.kind,
        recipient_name=user.display_name,
        rectification_id=row.id,
        title=row.title,
        unit_name=unit.name if unit else "",
        case_count=cases,
        stage_label=ROOT_CAUSE_STAGE_LABELS_ZH[RootCauseStage(context.get("stage") or row.stage)],
        due_at=clock_text_zh(datetime.fromisoformat(due_at)) if due_at else "",
        rung=context.get("rung") or 0,
        message=context.get("message", ""),
        url=f"{settings.public_base_url}/root-cause/{row.id}",
    )
    return user.email, mail
