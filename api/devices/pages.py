"""The rating pages a device is told to open: one rating link (一人一事一码) per window transaction.

When a business system registers a window transaction with the staff member who handled it, a rating
invitation is issued in the same transaction (issued_by = that system, the token kept sealed so the
page can be sent again), and a push notice names it. What the device gets is built from the
invitation row when it is delivered, so nothing secret travels between processes, and a device that
was offline finds its pages again at its next login: the valid, unused invitations of its staff
member's records that are not rated yet. No table of its own.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.devices.bus import Push
from api.devices.login import DeviceIdentity
from api.devices.protocol import china_time
from config import Settings
from models.calendar import load_calendar
from models.db import utcnow
from models.deadlines import compute_due
from models.policy_store import policy_for_unit
from models.rating_intake import targets_of
from models.rating_invitations import RatingInvitation, issue_invitation
from models.ratings import Rating, RatingTarget
from models.services import ServiceChannel, ServiceItem, ServiceRecord
from pages.citizen.qr import rating_url

# At login a device gets at most this many pending pages, the most recent transactions, oldest first
# (the last one shown is the latest transaction). Older ones stay valid through the receipt's link.
PENDING_LIMIT = 20
_CANDIDATES = PENDING_LIMIT * 5
_STAFF_RECORD_TARGETS = {RatingTarget.ITEM, RatingTarget.STAFF}


async def invite_at_counter(session: AsyncSession, record: ServiceRecord, source_system: str) -> Push | None:
    """For a window transaction with its staff member: a rating invitation for the counter device (caller commits)."""
    if record.service_channel != ServiceChannel.WINDOW or record.staff_id is None:
        return None
    assert record.id is not None
    pinned = await policy_for_unit(session, record.unit_id)
    # As long as a link the system asks for itself: the profile's 补充评价 window.
    expires_at = compute_due(utcnow(), pinned.profile.rating.supplementary, await load_calendar(session)).at
    invitation, _ = issue_invitation(session, record.id, source_system, expires_at, keep_token=True)
    await session.flush()
    assert invitation.id is not None
    return Push(invitation_id=invitation.id, staff_id=record.staff_id, source_system=source_system)


async def _rated(session: AsyncSession, record_ids: list[int]) -> dict[int, set[RatingTarget]]:
    rows = (
        await session.exec(select(Rating.record_id, Rating.target).where(col(Rating.record_id).in_(record_ids)))
    ).all()
    rated: dict[int, set[RatingTarget]] = defaultdict(set)
    for record_id, target in rows:
        rated[record_id].add(RatingTarget(target))
    return rated


async def open_rating(
    session: AsyncSession, settings: Settings, invitation_id: int, device: DeviceIdentity
) -> dict[str, Any] | None:
    """The `open_rating` message of an invitation, if it is this device's and still open; else None."""
    row = (
        await session.exec(
            select(RatingInvitation, ServiceRecord, ServiceItem)
            .join(ServiceRecord, col(ServiceRecord.id) == RatingInvitation.record_id)
            .join(ServiceItem, col(ServiceItem.id) == ServiceRecord.item_id)
            .where(RatingInvitation.id == invitation_id)
        )
    ).first()
    if row is None:
        return None
    invitation, record, item = row
    open_now = invitation.used_at is None and invitation.expires_at > utcnow() and invitation.token_sealed is not None
    theirs = record.staff_id == device.staff_id and invitation.issued_by == device.source_system
    assert record.id is not None
    if not (open_now and theirs) or set(targets_of(record)) <= (await _rated(session, [record.id]))[record.id]:
        return None
    assert invitation.token_sealed is not None
    return {
        "type": "open_rating",
        "record_no": record.record_no,
        "item_name": item.name,
        "url": rating_url(settings, invitation.token_sealed),
        "expires_at": china_time(invitation.expires_at),
    }


async def pending_invitations(session: AsyncSession, device: DeviceIdentity) -> list[int]:
    """The invitations a device should open on login: one per unrated record of its staff member, oldest first."""
    candidates = (
        await session.exec(
            select(RatingInvitation.id, RatingInvitation.record_id)
            .join(ServiceRecord, col(ServiceRecord.id) == RatingInvitation.record_id)
            .where(
                ServiceRecord.staff_id == device.staff_id,
                RatingInvitation.issued_by == device.source_system,
                col(RatingInvitation.used_at).is_(None),
                RatingInvitation.expires_at > utcnow(),
                col(RatingInvitation.token_sealed).is_not(None),
            )
            .order_by(col(ServiceRecord.completed_at).desc(), col(RatingInvitation.id).desc())
            .limit(_CANDIDATES)
        )
    ).all()
    rated = await _rated(session, list({record_id for _, record_id in candidates}))
    chosen: dict[int, int] = {}  # record → its newest invitation, most recent records first
    for invitation_id, record_id in candidates:
        # Every candidate has a staff member, so both targets (item and staff) are open until rated.
        if record_id in chosen or rated[record_id] >= _STAFF_RECORD_TARGETS:
            continue
        assert invitation_id is not None  # a primary key
        chosen[record_id] = invitation_id
        if len(chosen) == PENDING_LIMIT:
            break
    return list(reversed(chosen.values()))
