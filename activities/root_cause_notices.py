"""What a root-cause rectification's events write besides themselves: notices to staff, and the result on its cases.

Both are staged in the event's own transaction (activities/root_cause.py), so they exist exactly
when the event does. Nothing is sent here: the worker's notice relay sends the rows
(activities/notice_sender.py), as for cases.

- A notice to staff names the rectification (`root_cause_id`); its audience is resolved with the
  case notices' own rules (activities/notices.py: the unit's staff, the supervising office, the
  management office), and reminders and escalations wait for office hours as a case's do.
- The accepted result goes to each linked case: one CaseEvent on its timeline, and one notice to
  its rater per channel the rater left — only when the rater can be told: the same rule as a
  case's feedback (a real-name rater, or an anonymous one where the case's pinned profile allows
  feedback). The rater's address is read when the notice is sent, never here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.notices import audience_users, notice_key
from models.calendar import load_calendar
from models.case.records import Case, CaseEvent
from models.notifications import NoticeChannel, Notification
from models.office_hours import next_office_time
from models.organisation import Unit
from models.policy_store import policy_version
from models.ratings import Rating
from models.root_cause import RootCauseLink, RootCauseRectification
from models.root_cause_io import ROOT_CAUSE_RESULT_NOTICE, RootCauseEventInput, RootCauseNotice


def root_cause_notice_key(rectification_id: int, key: str, channel: NoticeChannel, recipient: str) -> str:
    """The key of one staff notice of a rectification: unique across rectifications, cases and records."""
    return f"rootcause{rectification_id}.{key}.{channel.value}.{recipient}"


async def write_staff_notices(
    session: AsyncSession,
    row: RootCauseRectification,
    inp: RootCauseEventInput,
    now: datetime,
    office_hours_enforced: bool,
) -> list[dict[str, Any]]:
    """Stage the staff notices of an event (the caller commits). Returns what the timeline shows of them."""
    assert row.id is not None
    unit = await session.get(Unit, row.unit_id)
    assert unit is not None
    summaries = []
    for notice in inp.notices:
        users = await audience_users(session, notice.audience, unit)
        held_until = await _office_hours_hold(session, row, notice, now) if office_hours_enforced else None
        context = {
            "stage": inp.stage.value,
            "due_at": notice.due_at.isoformat() if notice.due_at else None,
            "rung": notice.rung,
            "message": notice.message,
        }
        keys = [root_cause_notice_key(row.id, notice.key, NoticeChannel.EMAIL, f"user:{u.id}") for u in users]
        existing = set(
            (await session.exec(select(Notification.dedup_key).where(col(Notification.dedup_key).in_(keys)))).all()
        )
        for user, key in zip(users, keys, strict=True):
            if key not in existing:
                session.add(
                    Notification(
                        root_cause_id=row.id,
                        kind=notice.kind,
                        channel=NoticeChannel.EMAIL,
                        recipient_ref=f"user:{user.id}",
                        dedup_key=key,
                        event_key=inp.event_key,
                        context=context,
                        next_attempt_at=held_until,
                    )
                )
        summary: dict[str, Any] = {
            "kind": notice.kind,
            "audience": notice.audience,
            "recipients": [f"user:{u.id}" for u in users],
        }
        if not users:
            summary["reason"] = f"no {notice.audience} with a way to be reached"
        if held_until is not None:
            summary["held_until"] = held_until.isoformat()
        summaries.append(summary)
    return summaries


async def _office_hours_hold(
    session: AsyncSession, row: RootCauseRectification, notice: RootCauseNotice, now: datetime
) -> datetime | None:
    """Reminders and escalations wait for the unit's office hours, as a case's do (the profile's applies_to)."""
    pinned = await policy_version(session, row.policy_code, row.policy_version)
    if pinned is None or not pinned.profile.office_hours.holds(notice.kind.removeprefix("root_cause_")):
        return None
    opens = next_office_time(now, pinned.profile.office_hours, await load_calendar(session))
    return opens if opens > now else None


async def feed_back_result(
    session: AsyncSession, row: RootCauseRectification, inp: RootCauseEventInput
) -> dict[str, Any]:
    """The accepted result on every linked case: a timeline entry each, a notice to each rater who can be told."""
    assert row.id is not None and inp.result is not None
    links = (
        await session.exec(
            select(RootCauseLink).where(RootCauseLink.rectification_id == row.id).order_by(col(RootCauseLink.case_id))
        )
    ).all()
    told: list[int] = []
    not_told: list[int] = []
    for link in links:
        case = await session.get(Case, link.case_id)
        assert case is not None and case.id is not None
        rating = await session.get(Rating, case.rating_id)
        assert rating is not None
        channels = await _rater_channels(session, case, rating)
        event_key = f"root-cause-{row.id}-result"
        notices = []
        for channel in channels:
            key = notice_key(case.id, f"rootcause{row.id}.result", channel, "rater")
            if (await session.exec(select(Notification.id).where(Notification.dedup_key == key))).first() is None:
                session.add(
                    Notification(
                        case_id=case.id,
                        kind=ROOT_CAUSE_RESULT_NOTICE,
                        channel=channel,
                        recipient_ref="rater",
                        dedup_key=key,
                        event_key=event_key,
                        context={"round": case.round, "message": inp.result, "root_cause_id": row.id},
                    )
                )
            notices.append({"kind": ROOT_CAUSE_RESULT_NOTICE, "audience": "rater", "channel": channel.value})
        (told if channels else not_told).append(case.id)
        # "note" and "message" are what the case page shows of an event: the rectification, and its result.
        data: dict[str, Any] = {
            "root_cause_id": row.id,
            "note": f"根源整改 #{row.id}「{row.title}」已验收",
            "message": inp.result,
            "notices": notices,
        }
        if not channels:
            data["reason"] = "评价人未留联系方式或无需反馈（匿名评价）"
        written = (
            await session.exec(
                select(CaseEvent.id).where(CaseEvent.case_id == case.id, CaseEvent.event_key == event_key)
            )
        ).first()
        if written is None:
            session.add(
                CaseEvent(
                    case_id=case.id,
                    event_key=event_key,
                    stage=case.stage,
                    round=case.round,
                    action="root_cause_result",
                    actor=inp.actor,
                    at=inp.at,
                    data=data,
                )
            )
    return {"cases": len(links), "raters_told": told, "raters_not_told": not_told}


async def _rater_channels(session: AsyncSession, case: Case, rating: Rating) -> list[NoticeChannel]:
    """The channels the case's rater can be told the result on: none for an anonymous rater the profile leaves alone."""
    if not (rating.rater_email or rating.rater_phone):
        return []
    if not rating.real_name:
        pinned = await policy_version(session, case.policy_code, case.policy_version)
        if pinned is None or not pinned.profile.anonymous.feedback_possible:
            return []
    channels = []
    if rating.rater_email:
        channels.append(NoticeChannel.EMAIL)
    if rating.rater_phone:
        channels.append(NoticeChannel.SMS)
    return channels
