"""Upstream reporting for administrators: the dead letters, and pushing one again after fixing its cause.

The relay in the worker pushes every rating and finished case to the platform (docs/upstream.md).
A push the platform refused for good, or that failed every attempt, stops as a dead letter with the
reason; an administrator fixes the cause (credentials, the data, the platform) and sends it again
here, with the same push id, so the platform still counts it once. Every retry is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentAdmin, SessionDep, SettingsDep, audit_user_action
from api.errors import api_error, error_responses
from api.params import IdPath, Limit, Offset
from models.db import utcnow
from models.upstream import PushStatus, UpstreamPush, UpstreamPushRead
from models.users import User

router = APIRouter(prefix="/api/v1/upstream", tags=["upstream reporting"])

RETRYABLE = (PushStatus.DEAD, PushStatus.SKIPPED)


class DeadLetters(BaseModel):
    """Response of GET /api/v1/upstream/dead-letters."""

    reporting_on: bool = Field(description="Whether an upstream URL is set (HCP_UPSTREAM_URL)")
    counts: dict[PushStatus, int] = Field(description="How many pushes are in each status")
    total: int = Field(description="How many dead letters there are")
    items: list[UpstreamPushRead] = Field(description="Dead letters, the latest first")


async def push_counts(session: AsyncSession) -> dict[PushStatus, int]:
    """How many pushes are in each status (every status listed, zero included)."""
    rows = await session.exec(select(UpstreamPush.status, func.count()).group_by(col(UpstreamPush.status)))
    found = {PushStatus(status): count for status, count in rows.all()}
    return {status: found.get(status, 0) for status in PushStatus}


@router.get("/dead-letters", response_model=DeadLetters)
async def list_dead_letters(
    session: SessionDep, settings: SettingsDep, _admin: CurrentAdmin, limit: Limit = 50, offset: Offset = 0
) -> DeadLetters:
    """Pushes the platform refused or that failed every attempt, with the reason, the latest first."""
    counts = await push_counts(session)
    rows = await session.exec(
        select(UpstreamPush)
        .where(col(UpstreamPush.status) == PushStatus.DEAD)
        .order_by(col(UpstreamPush.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return DeadLetters(
        reporting_on=settings.upstream_enabled,
        counts=counts,
        total=counts[PushStatus.DEAD],
        items=[UpstreamPushRead.of(push) for push in rows.all()],
    )


@router.post("/pushes/{push_id}/retry", response_model=UpstreamPushRead, responses=error_responses(409))
async def retry_push(
    push_id: IdPath, request: Request, session: SessionDep, settings: SettingsDep, admin: CurrentAdmin
) -> UpstreamPushRead:
    """Send a dead letter (or a push written while reporting was off) again, with fresh attempts."""
    return await requeue(session, request, admin, push_id, settings.upstream_enabled)


async def requeue(
    session: AsyncSession, request: Request, admin: User, push_id: int, reporting_on: bool
) -> UpstreamPushRead:
    """Back to pending, due now, attempts from zero; the push keeps its id and its Idempotency-Key."""
    push = await session.get(UpstreamPush, push_id)
    if push is None:
        raise api_error(404, "not_found", f"上报记录 {push_id} 不存在")
    if push.status not in RETRYABLE:
        raise api_error(409, "not_failed", f"上报记录 {push_id} 当前状态不是上报失败，无需重新上报")
    if not reporting_on:
        raise api_error(409, "upstream_off", "上报未启用（未设置 HCP_UPSTREAM_URL），无法重新上报")
    before = {"status": push.status.value, "attempts": push.attempts, "last_error": push.last_error}
    # Only from the state this request saw: two administrators clicking at once requeue it once.
    result = await (await session.connection()).execute(
        update(UpstreamPush)
        .where(col(UpstreamPush.id) == push_id, col(UpstreamPush.status) == push.status)
        .values(status=PushStatus.PENDING, attempts=0, next_attempt_at=utcnow(), claimed_until=None)
    )
    if result.rowcount != 1:
        await session.rollback()
        raise api_error(409, "not_failed", f"上报记录 {push_id} 已被重新上报")
    audit_user_action(
        session, request, admin, "upstream.retry", "upstream_push", push_id, before=before, after={"status": "pending"}
    )
    await session.commit()
    await session.refresh(push)
    return UpstreamPushRead.of(push)
