"""Rating intake (评价接收): where a rating arrives and, if it is bad, becomes a case.

The rating, its case row and an outbox entry are written in one transaction. A bad rating's
workflow is then started at once; if Temporal does not answer within a couple of seconds the
rating is still accepted and the worker's outbox relay starts the case later. Once that transaction
has committed the answer is 201 whatever happens next: the rating exists, and the relay covers the rest.

With an Idempotency-Key the key is claimed first, in the same transaction, so concurrent retries of one
rating write it once and all get the first answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Header, status
from fastapi.responses import JSONResponse
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import (
    Caller,
    CurrentApiClient,
    CurrentCaller,
    SessionDep,
    SettingsDep,
    TemporalDep,
    visible_unit_ids,
)
from api.errors import api_error
from api.idempotency import check_key, claim, fingerprint, replay, settle
from api.params import IdPath
from config import Settings
from models.case.records import Case
from models.case.vocabulary import CaseWorkflowInput, workflow_id_for_rating
from models.db import utcnow
from models.idempotency import IdempotentResponse
from models.outbox import START_CASE, OutboxEntry
from models.policy_store import policy_for_unit
from models.privacy import mask_email, mask_name, mask_phone
from models.ratings import Rating, RatingAccepted, RatingCreate, RatingRead, RatingTarget
from models.services import ServiceRecord
from runtime.temporal import TemporalConnection, start_case_workflow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/ratings", tags=["ratings"])

_IDEMPOTENCY_HEADER = Header(alias="Idempotency-Key", description="Retry-safe key: a repeat returns the first response")


@router.post(
    "",
    response_model=RatingAccepted,
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "unknown service record"}, 409: {"description": "target already rated"}},
)
async def submit_rating(
    body: RatingCreate,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    api_client: CurrentApiClient,
    idempotency_key: Annotated[str | None, _IDEMPOTENCY_HEADER] = None,
) -> JSONResponse:
    """Accept one rating from a channel. A bad rating opens a case (差评工单)."""
    check_key(idempotency_key)
    scope = f"apikey:{api_client.id}:ratings"
    request_hash = fingerprint(body)
    if (replayed := await replay(session, scope, idempotency_key, request_hash)) is not None:
        return replayed

    record = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == body.record_no))).first()
    if record is None:
        raise api_error(404, "unknown_record", f"办件编号 {body.record_no} 未登记", field="record_no")
    assert record.id is not None
    if body.target == RatingTarget.STAFF and record.staff_id is None:
        raise api_error(422, "no_staff_to_rate", "该办件没有经办工作人员，只能评价事项", field="target")

    pinned = await policy_for_unit(session, record.unit_id)
    claimed: IdempotentResponse | None = None
    if idempotency_key is not None:
        # Before any other write: a lost claim rolls the session back and answers as the winner did.
        outcome = await claim(session, scope, idempotency_key, request_hash)
        if isinstance(outcome, JSONResponse):
            return outcome
        claimed = outcome
    rating = Rating(
        record_id=record.id,
        level=body.level,
        channel=body.channel,
        target=body.target,
        answers=body.answers,
        comment=body.comment,
        real_name=body.real_name,
        rater_name=body.rater.name if body.rater else None,
        rater_phone=body.rater.phone if body.rater else None,
        rater_email=str(body.rater.email) if body.rater and body.rater.email else None,
        is_bad=pinned.profile.is_bad(body.level.value),
        source_system=api_client.source_system,
    )
    session.add(rating)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise api_error(
            409,
            "already_rated",
            f"办件 {body.record_no} 的{_target_zh(body.target)}已评价过，每个对象只能评价一次",
            field="target",
        ) from None
    assert rating.id is not None and record.id is not None

    workflow_input: CaseWorkflowInput | None = None
    workflow_id = ""
    if rating.is_bad:
        case = Case(
            rating_id=rating.id,
            unit_id=record.unit_id,
            workflow_id=workflow_id_for_rating(rating.id, settings.workflow_id_prefix),
            policy_code=pinned.code,
            policy_version=pinned.version,
        )
        session.add(case)
        await session.flush()
        assert case.id is not None
        workflow_id = case.workflow_id
        workflow_input = CaseWorkflowInput(
            case_id=case.id,
            rating_id=rating.id,
            unit_id=record.unit_id,
            level=rating.level.value,
            real_name=rating.real_name,
            rater_has_email=rating.rater_email is not None,
            rater_has_phone=rating.rater_phone is not None,
            policy=pinned,
        )
        outbox = OutboxEntry(
            kind=START_CASE,
            case_id=case.id,
            payload={"workflow_id": case.workflow_id, "input": workflow_input.model_dump(mode="json")},
        )
        session.add(outbox)

    accepted = RatingAccepted(
        rating_id=rating.id, is_bad=rating.is_bad, case_id=workflow_input.case_id if workflow_input else None
    )
    content = accepted.model_dump(mode="json")
    if claimed is not None:
        settle(session, claimed, status.HTTP_201_CREATED, content)
    await session.commit()

    if workflow_input is not None:
        try:
            await _start_case_now(session, temporal, settings, workflow_id, workflow_input, outbox.id)
        except Exception as exc:  # noqa: BLE001 - committed: the rating stands and the relay starts the case
            log.warning(
                "rating %s accepted; fast start of case %s failed after commit (%s), left to the outbox relay",
                accepted.rating_id,
                workflow_input.case_id,
                type(exc).__name__,
            )
            with contextlib.suppress(Exception):
                await session.rollback()
    return JSONResponse(status_code=status.HTTP_201_CREATED, content=content)


async def _start_case_now(
    session: AsyncSession,
    temporal: TemporalConnection,
    settings: Settings,
    workflow_id: str,
    workflow_input: CaseWorkflowInput,
    outbox_id: int | None,
) -> None:
    """The fast path: start the workflow now. Any failure leaves the outbox row for the relay."""
    try:
        client = await asyncio.wait_for(temporal.client(), timeout=settings.temporal_start_timeout_seconds)
        await asyncio.wait_for(
            start_case_workflow(client, workflow_id, workflow_input, settings.temporal_task_queue),
            timeout=settings.temporal_start_timeout_seconds,
        )
    except Exception as exc:  # noqa: BLE001 - Temporal down or slow: the relay takes over
        log.warning("case %s left to the outbox relay: %s", workflow_input.case_id, type(exc).__name__)
        return
    await _mark_dispatched(session, outbox_id)


async def _mark_dispatched(session: AsyncSession, outbox_id: int | None) -> None:
    """Spare the relay a start that has happened (were this lost, the relay's start is a harmless repeat)."""
    await session.exec(
        update(OutboxEntry).where(col(OutboxEntry.id) == outbox_id).values(dispatched_at=utcnow(), attempts=1)
    )
    await session.commit()


def _target_zh(target: RatingTarget) -> str:
    return "事项" if target == RatingTarget.ITEM else "工作人员"


@router.get("/{rating_id}", response_model=RatingRead)
async def get_rating(rating_id: IdPath, session: SessionDep, caller: CurrentCaller) -> RatingRead:
    """One rating, rater contact masked. Business systems see their own; staff see their units'."""
    rating = await session.get(Rating, rating_id)
    record = await session.get(ServiceRecord, rating.record_id) if rating else None
    if rating is None or record is None or not await _may_read(session, caller, rating, record):
        raise api_error(404, "not_found", f"评价 {rating_id} 不存在或无权查看")
    case = (await session.exec(select(Case.id).where(Case.rating_id == rating.id))).first()
    assert rating.id is not None
    return RatingRead(
        id=rating.id,
        record_no=record.record_no,
        level=rating.level,
        channel=rating.channel,
        target=rating.target,
        answers=rating.answers,
        comment=rating.comment,
        real_name=rating.real_name,
        rater_name=mask_name(rating.rater_name),
        rater_phone=mask_phone(rating.rater_phone),
        rater_email=mask_email(rating.rater_email),
        is_bad=rating.is_bad,
        case_id=case,
        source_system=rating.source_system,
        submitted_at=rating.submitted_at,
    )


async def _may_read(session: AsyncSession, caller: Caller, rating: Rating, record: ServiceRecord) -> bool:
    if caller.api_client is not None:
        return caller.api_client.source_system == rating.source_system
    assert caller.user is not None
    units = await visible_unit_ids(session, caller.user)
    return units is None or record.unit_id in units
