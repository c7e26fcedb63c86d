"""Pushing to the upstream platform (数据上报): claim a due push, POST it, record the outcome.

Like the notice sender: a push is claimed for a lease (status `sending`) so two relays never send it
at once, and one whose relay died is taken over when the lease runs out. Every attempt of a push
carries the same Idempotency-Key (the row's `push_key`), so a retry after a timeout or a crash
between the send and its record is one report to the platform, not two. Timeouts, refused
connections, 408, 429 and 5xx are retried with exponential backoff; any other answer but 2xx is
permanent. After `upstream_max_attempts` failures, or at once on a permanent one, the push becomes a
dead letter with the reason (status and a body excerpt, or the exception type) for an
administrator. Nothing here logs what was sent or answered: only ids, statuses and exception types.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, or_, update
from sqlmodel import col, select

from activities.faults import crash_point
from config import Settings
from models.case.records import Case
from models.db import Database, utcnow
from models.upstream import PushKind, PushStatus, UpstreamPush
from models.upstream_fields import case_result_fields, rating_fields

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 425, 429})
EXCERPT_CHARS = 200
# What an answer could echo of a rater's comment: mobile and landline numbers, ID card numbers, email
# addresses. Only whole digit runs: push ids, times and codes in the answer stay readable.
_CONTACT_LIKE = re.compile(
    r"[\w.+-]+@[\w-]+(\.[\w-]+)+"
    r"|(?<![0-9])(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}|[0-9]{17}[0-9Xx])(?![0-9])"
)


class _Transient(Exception):
    """An attempt that may succeed later (the reason says why it did not now)."""


class _Permanent(Exception):
    """An answer that will not change by sending the same push again."""


def backoff(attempts: int, settings: Settings) -> timedelta:
    """base, 2×base, 4×base … up to the maximum, after the Nth failed attempt."""
    seconds = settings.upstream_backoff_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.upstream_backoff_max_seconds))


def excerpt(text: str) -> str:
    """The start of an answer's body, one line, with anything that looks like contact details blanked."""
    return _CONTACT_LIKE.sub("***", " ".join(text.split()))[:EXCERPT_CHARS]


class UpstreamSender:
    def __init__(self, db: Database, settings: Settings, client: httpx.AsyncClient) -> None:
        self._db = db
        self._settings = settings
        self._client = client

    async def due(self, limit: int = 100) -> list[int]:
        """Pushes ready to go: pending and past their backoff, or claimed by a relay whose lease ran out."""
        now = utcnow()
        async with self._db.session() as session:
            rows = await session.exec(
                select(UpstreamPush.id)
                .where(self._claimable(now))
                .order_by(col(UpstreamPush.next_attempt_at), col(UpstreamPush.id))
                .limit(limit)
            )
            return [row for row in rows.all() if row is not None]

    @staticmethod
    def _claimable(now: datetime) -> Any:
        return or_(
            and_(col(UpstreamPush.status) == PushStatus.PENDING, col(UpstreamPush.next_attempt_at) <= now),
            and_(col(UpstreamPush.status) == PushStatus.SENDING, col(UpstreamPush.claimed_until) < now),
        )

    async def claim(self, push_id: int) -> UpstreamPush | None:
        """Take the push for one lease (counting the attempt); None if it is not due or another relay has it."""
        now = utcnow()
        lease = timedelta(seconds=self._settings.upstream_lease_seconds)
        async with self._db.session() as session:
            result = await (await session.connection()).execute(
                update(UpstreamPush)
                .where(col(UpstreamPush.id) == push_id, self._claimable(now))
                .values(status=PushStatus.SENDING, claimed_until=now + lease, attempts=col(UpstreamPush.attempts) + 1)
            )
            await session.commit()
            if result.rowcount != 1:
                return None
            return await session.get(UpstreamPush, push_id)

    async def deliver(self, push: UpstreamPush) -> PushStatus:
        """Send a claimed push and record what happened (only while the claim is still this relay's)."""
        try:
            body = await self._body(push)
        except Exception as exc:  # noqa: BLE001 - a push that cannot even be built must not stall the relay
            return await self._failed_attempt(push, _Transient(type(exc).__name__))
        if body is None:
            return await self._dead(push, "上报对象已不存在")
        crash_point("upstream.before_send")
        try:
            await self._post(push, body)
        except (_Transient, _Permanent) as exc:
            return await self._failed_attempt(push, exc)
        crash_point("upstream.after_send")
        await self._set(push, status=PushStatus.DELIVERED, delivered_at=utcnow(), claimed_until=None, last_error="")
        log.info("upstream push %s (%s %s) delivered", push.id, push.kind, push.subject_id)
        return PushStatus.DELIVERED

    async def _body(self, push: UpstreamPush) -> dict[str, Any] | None:
        codes = self._settings.upstream_level_codes
        async with self._db.session() as session:
            if push.kind == PushKind.RATING:
                data = await rating_fields(session, push.subject_id, codes)
            else:
                rating_key = await _rating_push_key(session, push.subject_id)
                data = await case_result_fields(session, push.subject_id, rating_key)
        if data is None:
            return None
        return {"push_id": push.push_key, "type": push.kind.value, "data": data}

    async def _post(self, push: UpstreamPush, body: dict[str, Any]) -> None:
        """One POST; raises _Transient or _Permanent unless the platform answered 2xx."""
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": push.push_key,
        }
        if self._settings.upstream_token:
            headers["Authorization"] = f"Bearer {self._settings.upstream_token}"
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        # A send that outlived its lease would race the relay that takes the push over next.
        limit = min(self._settings.upstream_timeout_seconds, max(self._settings.upstream_lease_seconds - 5, 1))
        try:
            async with asyncio.timeout(limit):
                response = await self._client.post(
                    self._settings.upstream_url, content=content, headers=headers, timeout=limit
                )
        except (httpx.HTTPError, TimeoutError) as exc:
            raise _Transient(type(exc).__name__) from None
        if response.is_success:
            return
        reason = f"HTTP {response.status_code}: {excerpt(response.text)}".rstrip(": ")
        if response.status_code in RETRYABLE_STATUSES or response.status_code >= 500:
            raise _Transient(reason)
        raise _Permanent(reason)

    async def _failed_attempt(self, push: UpstreamPush, exc: Exception) -> PushStatus:
        reason = str(exc)
        if isinstance(exc, _Permanent):
            return await self._dead(push, reason)
        if push.attempts >= self._settings.upstream_max_attempts:
            return await self._dead(push, f"{push.attempts} 次尝试均失败，最后一次：{reason}")
        wait = backoff(push.attempts, self._settings)
        log.warning(
            "upstream push %s (%s %s) attempt %d failed (%s), next in %.1fs",
            push.id,
            push.kind,
            push.subject_id,
            push.attempts,
            reason.split(":", 1)[0],
            wait.total_seconds(),
        )
        await self._set(
            push,
            status=PushStatus.PENDING,
            next_attempt_at=utcnow() + wait,
            claimed_until=None,
            last_error=reason[:500],
        )
        return PushStatus.PENDING

    async def _dead(self, push: UpstreamPush, reason: str) -> PushStatus:
        # The reason's first words only: an answer's body is for the administrator's page, not the log.
        log.warning(
            "upstream push %s (%s %s) is a dead letter after %d attempt(s): %s",
            push.id,
            push.kind,
            push.subject_id,
            push.attempts,
            reason.split(":", 1)[0],
        )
        await self._set(push, status=PushStatus.DEAD, claimed_until=None, next_attempt_at=None, last_error=reason[:500])
        return PushStatus.DEAD

    async def _set(self, push: UpstreamPush, **values: Any) -> None:
        """Record an outcome, unless another relay has taken the push over since (then its outcome stands)."""
        async with self._db.session() as session:
            await (await session.connection()).execute(
                update(UpstreamPush)
                .where(
                    col(UpstreamPush.id) == push.id,
                    col(UpstreamPush.status) == PushStatus.SENDING,
                    col(UpstreamPush.attempts) == push.attempts,
                )
                .values(**values)
            )
            await session.commit()


async def _rating_push_key(session: Any, case_id: int) -> str:
    """The push key of the case's rating, so the platform links the result to the rating it reported."""
    case = await session.get(Case, case_id)
    if case is None:
        return ""
    key = (
        await session.exec(
            select(UpstreamPush.push_key).where(
                col(UpstreamPush.kind) == PushKind.RATING, col(UpstreamPush.subject_id) == case.rating_id
            )
        )
    ).first()
    return key or ""
