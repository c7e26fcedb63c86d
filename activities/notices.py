"""Notice intents: who gets which notice of a timeline event, written in the event's own transaction.

Nothing is sent here. Each recipient and channel gets one `Notification` row whose key names the
case, the notice (kind, round, deadline arm), the channel and the recipient; the worker's notice
relay sends the rows (activities/notice_sender.py). For the rater's feedback the round's one-time
answer link is made here too, once, so every retry of the notice carries the same link.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.calendar import load_calendar
from models.case.activity_io import Audience, NoticeRequest
from models.case.records import Case
from models.notifications import NoticeChannel, Notification
from models.office_hours import next_office_time
from models.organisation import Unit
from models.policy_store import policy_version
from models.rater_links import FEEDBACK_RESPONSE, RaterLink, new_token
from models.ratings import Rating
from models.roles import Role
from models.users import User


def notice_key(case_id: int, request_key: str, channel: NoticeChannel, recipient: str) -> str:
    """The key of one notice to one recipient over one channel: unique across every case."""
    return f"case{case_id}.{request_key}.{channel.value}.{recipient}"


async def write_notices(
    session: AsyncSession,
    case: Case,
    round_: int,
    stage: str,
    event_key: str,
    requests: list[NoticeRequest],
    now: datetime,
    office_hours_enforced: bool = True,
) -> list[dict[str, Any]]:
    """Stage the notice rows of an event (the caller commits). Returns what the timeline shows of them.

    A reminder or escalation to staff that falls due outside the unit's office hours (per the case's
    pinned profile) is held until they next open: its row waits with `next_attempt_at` set.
    """
    assert case.id is not None
    summaries = []
    for request in requests:
        targets = await _targets(session, case, request.audience)
        held_until = await _office_hours_hold(session, case, request, now) if office_hours_enforced else None
        context = {
            "stage": stage,
            "round": round_,
            "deadline": request.deadline.value if request.deadline else None,
            "due_at": request.due_at.isoformat() if request.due_at else None,
            "rung": request.rung,
            "message": request.message,
        }
        if request.kind == "feedback" and targets:  # the result asks for an answer: the round's link
            assert request.respond_by is not None
            await _answer_link(session, case.id, round_, request)
            context["respond_by"] = request.respond_by.isoformat()
        keys = [notice_key(case.id, request.key, channel, recipient) for channel, recipient in targets]
        existing = set(
            (await session.exec(select(Notification.dedup_key).where(col(Notification.dedup_key).in_(keys)))).all()
        )
        for (channel, recipient), key in zip(targets, keys, strict=True):
            if key not in existing:
                session.add(
                    Notification(
                        case_id=case.id,
                        kind=request.kind,
                        channel=channel,
                        recipient_ref=recipient,
                        dedup_key=key,
                        event_key=event_key,
                        context=context,
                        next_attempt_at=held_until,
                    )
                )
        summary: dict[str, Any] = {
            "kind": request.kind,
            "audience": request.audience,
            "recipients": sorted({recipient for _, recipient in targets}),
            "channels": sorted({channel.value for channel, _ in targets}),
        }
        if not targets:
            summary["reason"] = f"no {request.audience} with a way to be reached"
        if held_until is not None:
            summary["held_until"] = held_until.isoformat()
        summaries.append(summary)
    return summaries


async def _office_hours_hold(
    session: AsyncSession, case: Case, request: NoticeRequest, now: datetime
) -> datetime | None:
    """When the unit's office hours next open, if this notice must wait for them; None to send now."""
    if request.audience == "rater":
        return None
    pinned = await policy_version(session, case.policy_code, case.policy_version)
    if pinned is None or not pinned.profile.office_hours.holds(request.kind):
        return None
    opens = next_office_time(now, pinned.profile.office_hours, await load_calendar(session))
    return opens if opens > now else None


async def _targets(session: AsyncSession, case: Case, audience: Audience) -> list[tuple[NoticeChannel, str]]:
    """(channel, recipient reference) pairs for an audience of this case; never an address."""
    if audience == "rater":
        rating = await session.get(Rating, case.rating_id)
        assert rating is not None
        targets = []
        if rating.rater_email:
            targets.append((NoticeChannel.EMAIL, "rater"))
        if rating.rater_phone:
            targets.append((NoticeChannel.SMS, "rater"))
        return targets
    unit = await session.get(Unit, case.unit_id)
    assert unit is not None
    return [(NoticeChannel.EMAIL, f"user:{user.id}") for user in await audience_users(session, audience, unit)]


async def _answer_link(session: AsyncSession, case_id: int, round_: int, request: NoticeRequest) -> None:
    """The round's one-time answer link, made once; the token is kept sealed so a resend repeats it."""
    found = (
        await session.exec(
            select(RaterLink).where(
                RaterLink.case_id == case_id, RaterLink.round == round_, RaterLink.purpose == FEEDBACK_RESPONSE
            )
        )
    ).first()
    assert request.respond_by is not None
    token, token_hash = new_token()
    if found is not None:
        if found.token_sealed is None:
            # Made by the code before links were sealed (it kept only the hash): give it a token that
            # can be sent, as that code did on every retry; the old one was never delivered.
            found.token_hash, found.token_sealed, found.expires_at = token_hash, token, request.respond_by
            session.add(found)
        return
    session.add(
        RaterLink(
            case_id=case_id,
            round=round_,
            purpose=FEEDBACK_RESPONSE,
            token_hash=token_hash,
            token_sealed=token,
            expires_at=request.respond_by,
        )
    )


async def audience_users(session: AsyncSession, audience: Audience, unit: Unit) -> list[User]:
    """The people an audience means for a case of this unit (active, with an email address).

    Reviewers and supervisors belong to an office and hear only of cases in its subtree: the
    supervisor is the unit's parent office, the management office the top of the tree, and the
    reviewers those of any office above the unit (or of the unit itself).
    """
    if audience == "reviewers":
        condition = (col(User.role) == Role.REVIEWER) & col(User.unit_id).in_(await unit_ancestor_ids(session, unit))
    elif audience == "unit_staff":
        condition = (col(User.role) == Role.UNIT_STAFF) & (col(User.unit_id) == unit.id)
    else:
        ancestors = await unit_ancestor_ids(session, unit)
        target = ancestors[-1] if audience == "management_office" else (unit.parent_id or unit.id)
        condition = (col(User.role) == Role.SUPERVISOR) & (col(User.unit_id) == target)
    query = select(User).where(condition, User.active == True, col(User.email).is_not(None))  # noqa: E712
    return list((await session.exec(query.order_by(col(User.id)))).all())


async def unit_ancestor_ids(session: AsyncSession, unit: Unit) -> list[int]:
    """The unit and every unit above it, nearest first; the last is the management office (政务服务管理机构)."""
    assert unit.id is not None
    chain, current = [unit.id], unit
    while current.parent_id is not None and current.parent_id not in chain:
        parent = await session.get(Unit, current.parent_id)
        assert parent is not None and parent.id is not None
        chain.append(parent.id)
        current = parent
    return chain
