"""Rating invitations (评价邀请, 一人一事一码): a random token for one service record, of which only a hash is stored.

Like the rater's answer links (models/rater_links.py), the URL carries the token and never the
record. Issued to a business system (POST /api/v1/service-records/{record_no}/rating-link), to a
rater who proved at a window's code that the record is theirs (pages/citizen/windows.py), to a
rating device, or by the invitation sweep (docs/intake.md); the rating page is pages/citizen/rate.py.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import UTCDateTime, utcnow
from models.pii import EncryptedText
from models.rater_links import hash_token, new_token


class RatingInvitation(SQLModel, table=True):
    """An invitation to rate one service record (一人一事一码): the URL carries a random token, never the record.

    Issued to the business system that registered the record (it prints or sends the link, and
    only it may fetch the QR code again: the token is kept sealed for that), or for a few minutes
    after a rater proved at a window's code that the record is theirs (no sealed token then).
    """

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="servicerecord.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    token_sealed: str | None = Field(default=None, sa_type=EncryptedText, description="the token, encrypted")
    issued_by: str = Field(max_length=64, description='the source system, or "window:<code>"')
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def issue_invitation(
    session: AsyncSession, record_id: int, issued_by: str, expires_at: datetime, keep_token: bool
) -> tuple[RatingInvitation, str]:
    """A new invitation (added to the session; the caller commits) and its token for the URL."""
    token, token_hash = new_token()
    invitation = RatingInvitation(
        record_id=record_id,
        token_hash=token_hash,
        token_sealed=token if keep_token else None,
        issued_by=issued_by,
        expires_at=expires_at,
    )
    session.add(invitation)
    return invitation, token


async def find_invitation(session: AsyncSession, token: str) -> RatingInvitation | None:
    """The invitation a URL's token names, if any (looked up by the token's hash)."""
    return (
        await session.exec(select(RatingInvitation).where(RatingInvitation.token_hash == hash_token(token)))
    ).first()


class RatingLinkIssued(BaseModel):
    """Response of POST /api/v1/service-records/{record_no}/rating-link."""

    url: str = PydanticField(description="The rating page for this record; the token in it is the only credential")
    qr_svg_url: str = PydanticField(description="The link as a QR code (SVG), for the issuing system's key only")
    qr_png_url: str = PydanticField(description="The link as a QR code (PNG), for the issuing system's key only")
    expires_at: datetime
