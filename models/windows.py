"""Service windows (服务窗口) and their static QR code (一窗一码), with the check that guards it.

A window's code is printed in the hall, so it is public: whoever scans it says which record they
rate (办件编号, on the receipt) and proves it is theirs with the last four digits of the phone the
record was registered with. Wrong guesses are counted per window and client, and refused for a
while after a few, so the 10,000 possible tails cannot be walked.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import UTCDateTime, utcnow
from models.services import ServiceRecord, phone_check_digest

WINDOW_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
MAX_FAILED_CHECKS = 5
CHECK_LOCK = timedelta(minutes=15)
# Attempts older than this are never counted again; they are deleted as new ones come in.
_KEEP_ATTEMPTS = timedelta(days=1)


class ServiceWindow(SQLModel, table=True):
    """A window of a unit's hall; its QR code opens /w/<code>."""

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    code: str = Field(unique=True, max_length=32, description="printed in the QR code's URL")
    name: str = Field(max_length=100, description="e.g. 企业登记 3 号窗口")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WindowCheckAttempt(SQLModel, table=True):
    """One try at a window's record check. The client is kept only as a keyed digest of its address."""

    id: int | None = Field(default=None, primary_key=True)
    window_id: int = Field(foreign_key="servicewindow.id", index=True)
    client_key: str = Field(max_length=64)
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    succeeded: bool = False


def client_key(signing_key: str, address: str) -> str:
    """A stable, unreadable name for a client address (no IP addresses at rest)."""
    key = hmac.new(signing_key.encode(), b"hcp/window-check-client/v1", hashlib.sha256).digest()
    return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()


async def begin_attempt(session: AsyncSession, window_id: int, client: str) -> WindowCheckAttempt | None:
    """Count this try first, then decide: the attempt, or None when the client is locked out of this window.

    The try is committed before the check runs, so parallel guesses all see each other and at most
    MAX_FAILED_CHECKS of them are ever checked in any CHECK_LOCK. A refused try is not kept, so
    knocking during the lock does not prolong it.
    """
    now = utcnow()
    await session.exec(
        delete(WindowCheckAttempt).where(
            col(WindowCheckAttempt.window_id) == window_id, col(WindowCheckAttempt.attempted_at) < now - _KEEP_ATTEMPTS
        )
    )
    attempt = WindowCheckAttempt(window_id=window_id, client_key=client, attempted_at=now)
    session.add(attempt)
    await session.commit()
    failures = (
        await session.exec(
            select(func.count()).where(
                col(WindowCheckAttempt.window_id) == window_id,
                col(WindowCheckAttempt.client_key) == client,
                col(WindowCheckAttempt.succeeded).is_(False),
                col(WindowCheckAttempt.attempted_at) > now - CHECK_LOCK,
                col(WindowCheckAttempt.id) <= attempt.id,
            )
        )
    ).one()
    if failures > MAX_FAILED_CHECKS:
        await session.delete(attempt)
        await session.commit()
        return None
    return attempt


async def succeed(session: AsyncSession, attempt: WindowCheckAttempt) -> None:
    """A passed check does not count against the client (the caller commits)."""
    attempt.succeeded = True
    session.add(attempt)


def record_matches(
    record: ServiceRecord | None, window: ServiceWindow, signing_key: str, record_no: str, tail: str
) -> bool:
    """Whether the record exists, is the window's unit's, and its registered phone ends with `tail`.

    Every way of failing gives the same False, so the answer never says which part was wrong.
    """
    expected = record.applicant_phone_check if record is not None else None
    given = phone_check_digest(signing_key, record_no, tail)
    # Compare even when there is nothing to compare with, so a missing record takes as long as a wrong tail.
    same = hmac.compare_digest(given, expected or "0" * len(given))
    return same and record is not None and expected is not None and record.unit_id == window.unit_id
