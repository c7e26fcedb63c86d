"""Rating invitations to unrated applicants (短信邀评): one batch of the sweep, exactly once per record.

A record is invited when its profile's `invitation_after` has passed since completion, its 补充评价
window is still open, nobody has rated it, it has not been invited and the business system gave the
applicant's phone or email. For each: a rating link (models/rating_invitations.py: a random token,
one use, expiring when the window closes, the token kept sealed so a resend carries the same link),
ONE notice (SMS, or email when there is only an email) and `invited_at`, all in one transaction
with the records locked. The notice relay sends it (activities/notice_sender.py); the message holds
the link and nothing about the person. A rerun, a second sweep at once or a retried batch finds the
record invited (or locked) and the notice's key taken: still one invitation per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models.calendar import load_calendar
from models.deadlines import CHINA_TZ
from models.notifications import NoticeChannel, Notification
from models.rating_invitations import issue_invitation
from models.rating_timing import Clocks, supplementary_closes_at
from models.services import ServiceRecord
from models.unrated_records import CompletedBetween, next_unrated, policy_groups

INVITATION_KIND = "rating_invitation"
INVITATION_ISSUER = "sweep:invitation"  # RatingInvitation.issued_by: no business system's QR endpoints see it
APPLICANT = "applicant"


@dataclass(frozen=True)
class QuietHours:
    """When no invitation is texted or mailed (China time); one queued then waits for `ends`. None: never quiet."""

    starts: time
    ends: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """ "21:00-08:00" (empty: none)."""
        if not text.strip():
            return None
        starts, _, ends = text.partition("-")
        return cls(time.fromisoformat(starts.strip()), time.fromisoformat(ends.strip()))

    def held_until(self, now: datetime) -> datetime | None:
        """The end of the quiet period `now` falls in, if it does."""
        local = now.astimezone(CHINA_TZ)
        clock = local.time()
        overnight = self.starts > self.ends
        quiet = (clock >= self.starts or clock < self.ends) if overnight else (self.starts <= clock < self.ends)
        if not quiet:
            return None
        day = local.date() + timedelta(days=1) if overnight and clock >= self.starts else local.date()
        return datetime.combine(day, self.ends, tzinfo=CHINA_TZ)


@dataclass(frozen=True)
class InvitationBatch:
    last_id: int | None  # the cursor for the next batch; None: nothing was scanned
    scanned: int
    sms: int
    email: int


async def stage_invitations(
    session: AsyncSession, now: datetime, after_id: int, limit: int, quiet: QuietHours | None
) -> InvitationBatch:
    """Invite the next `limit` records after `after_id` due an invitation at `now`; the caller commits.

    Raises IntegrityError when another sweep wrote one of the same notices first (SQLite, which
    cannot skip locked rows): roll back and call again, and that record is no longer found.
    """
    clocks = Clocks(await load_calendar(session))
    groups = await policy_groups(session)
    ranges = [
        CompletedBetween(
            group.unit_ids,
            since=clocks.started_before(group.pinned.profile.rating.supplementary, now),  # window still open
            before=clocks.started_before(group.pinned.profile.rating.invitation_after, now),  # delay passed
        )
        for group in groups
    ]
    windows = {unit_id: group.pinned.profile.rating for group in groups for unit_id in group.unit_ids}
    found = await next_unrated(
        session,
        ranges,
        after_id,
        limit,
        col(ServiceRecord.invited_at).is_(None),
        (col(ServiceRecord.applicant_phone).is_not(None)) | (col(ServiceRecord.applicant_email).is_not(None)),
    )
    if not found:
        return InvitationBatch(None, 0, 0, 0)
    held_until = quiet.held_until(now) if quiet else None
    issued = []
    for record in found:
        closes_at = supplementary_closes_at(record.completed_at, windows[record.unit_id], clocks)
        invitation, _ = issue_invitation(session, record.id, INVITATION_ISSUER, closes_at, keep_token=True)
        issued.append((record, invitation))
    await session.flush()
    for record, invitation in issued:
        assert invitation.id is not None
        session.add(
            Notification(
                record_id=record.id,
                kind=INVITATION_KIND,
                channel=NoticeChannel.SMS if record.has_phone else NoticeChannel.EMAIL,
                recipient_ref=APPLICANT,
                # One per record, ever: a second sweep's row for it cannot be written.
                dedup_key=f"{INVITATION_KIND}.record-{record.id}",
                context={"invitation_id": invitation.id, "valid_until": invitation.expires_at.isoformat()},
                next_attempt_at=held_until,
                created_at=now,
            )
        )
    await session.exec(
        update(ServiceRecord).where(col(ServiceRecord.id).in_([r.id for r in found])).values(invited_at=now)
    )
    await session.flush()
    sms = sum(record.has_phone for record in found)
    return InvitationBatch(found[-1].id, len(found), sms, len(found) - sms)
