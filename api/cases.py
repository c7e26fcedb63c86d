"""Cases (差评工单): the inbox and case page (read from SQL), and the unit's actions (Temporal Updates).

Reads never touch Temporal. Each action is an Update on the case workflow: its validator accepts or
rejects it, and a rejection comes back as 409 (wrong stage), 403 (not your case) or 422.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentUser, SessionDep, TemporalDep, visible_unit_ids
from api.errors import api_error
from models.case_types import (
    AcceptFields,
    AcceptInput,
    Actor,
    CallbackFields,
    CallbackInput,
    CaseSnapshot,
    ErrorType,
    ExplanationFields,
    ExplanationInput,
    FeedbackFields,
    FeedbackInput,
    RectificationFields,
    RectificationInput,
    Stage,
    VerificationFields,
    VerificationInput,
)
from models.cases import Case, CaseDetail, CaseEvent, CaseEventRead, CasePage, CaseSummary, RaterView
from models.organisation import Unit
from models.privacy import mask_email, mask_name, mask_phone
from models.ratings import Rating
from models.services import ServiceItem, ServiceRecord
from models.users import Role, User
from workflows.case import CaseWorkflow

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

# A validator's ApplicationError type → (HTTP status, error code).
_UPDATE_ERRORS = {
    ErrorType.WRONG_STAGE: (409, "wrong_stage"),
    ErrorType.NOT_ALLOWED: (403, "not_allowed"),
    ErrorType.INVALID_INPUT: (422, "invalid_input"),
}
_UPDATE_TIMEOUT_SECONDS = 30
_IDEMPOTENCY_HEADER = Header(alias="Idempotency-Key", description="A retried click with the same key acts once")


def _summary_query() -> Any:
    return (
        select(Case, Unit.name, ServiceItem.name, ServiceRecord.record_no, Rating)
        .join(Rating, col(Rating.id) == Case.rating_id)
        .join(ServiceRecord, col(ServiceRecord.id) == Rating.record_id)
        .join(ServiceItem, col(ServiceItem.id) == ServiceRecord.item_id)
        .join(Unit, col(Unit.id) == Case.unit_id)
    )


def _summary(case: Case, unit_name: str, item_name: str, record_no: str, rating: Rating) -> dict[str, Any]:
    return {
        "id": case.id,
        "rating_id": case.rating_id,
        "unit_id": case.unit_id,
        "unit_name": unit_name,
        "item_name": item_name,
        "record_no": record_no,
        "level": rating.level.value,
        "stage": case.stage,
        "overdue": case.overdue,
        "callback_due_at": case.callback_due_at,
        "opened_at": case.opened_at,
        "closed_at": case.closed_at,
    }


@router.get("", response_model=CasePage)
async def list_cases(
    session: SessionDep,
    user: CurrentUser,
    stage: Stage | None = None,
    overdue: bool | None = None,
    unit_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasePage:
    """Cases the caller may see (own unit; a supervisor's subtree; all for admins), newest first."""
    units = await _readable_units(session, user)
    conditions = []
    if units is not None:
        conditions.append(col(Case.unit_id).in_(units))
    if stage is not None:
        conditions.append(Case.stage == stage)
    if overdue is not None:
        conditions.append(Case.overdue == overdue)
    if unit_id is not None:
        conditions.append(Case.unit_id == unit_id)
    total = (await session.exec(select(func.count()).select_from(Case).where(*conditions))).one()
    rows = (
        await session.exec(
            _summary_query().where(*conditions).order_by(col(Case.id).desc()).limit(limit).offset(offset)
        )
    ).all()
    return CasePage(items=[CaseSummary(**_summary(*row)) for row in rows], total=total, limit=limit, offset=offset)


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(case_id: int, session: SessionDep, user: CurrentUser) -> CaseDetail:
    """One case with its full timeline. The rater's contact is masked."""
    row = await _visible_case_row(session, user, case_id)
    case, _unit_name, _item_name, _record_no, rating = row
    events = (
        await session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id)))
    ).all()
    return CaseDetail(
        **_summary(*row),
        workflow_id=case.workflow_id,
        verdict=case.verdict,
        round=case.round,
        callback_due_provisional=case.callback_due_provisional,
        workflow_started=case.workflow_started_at is not None,
        comment=rating.comment,
        rater=RaterView(
            real_name=rating.real_name,
            name=mask_name(rating.rater_name),
            phone=mask_phone(rating.rater_phone),
            email=mask_email(rating.rater_email),
        ),
        timeline=[CaseEventRead(stage=e.stage, action=e.action, actor=e.actor, at=e.at, data=e.data) for e in events],
    )


async def _readable_units(session: AsyncSession, user: User) -> set[int] | None:
    if user.role == Role.REVIEWER:
        raise api_error(403, "forbidden", "复核人员只能查看申诉案件")
    return await visible_unit_ids(session, user)


async def _visible_case_row(session: AsyncSession, user: User, case_id: int) -> Any:
    units = await _readable_units(session, user)
    row = (await session.exec(_summary_query().where(Case.id == case_id))).first()
    # Another unit's case answers exactly like a missing one, so ids cannot be probed.
    if row is None or (units is not None and row[0].unit_id not in units):
        raise api_error(404, "not_found", f"工单 {case_id} 不存在或无权查看")
    return row


# ---- actions -------------------------------------------------------------------------------


async def _act(
    session: AsyncSession,
    temporal: Any,
    user: User,
    case_id: int,
    update: Any,
    update_input: BaseModel,
    idempotency_key: str | None,
) -> CaseSnapshot:
    """Send one Update to the case workflow and turn a rejection into an HTTP error."""
    case = (await _visible_case_row(session, user, case_id))[0]
    if user.role != Role.UNIT_STAFF or user.unit_id != case.unit_id:
        raise api_error(403, "not_handler", "只有承办单位的工作人员可以办理此工单")
    if case.workflow_started_at is None:
        raise api_error(409, "case_starting", "工单正在建立，请稍后再试")
    try:
        client = await temporal.client()
        handle = client.get_workflow_handle_for(CaseWorkflow.run, case.workflow_id)
        return await asyncio.wait_for(
            handle.execute_update(update, update_input, id=idempotency_key or str(uuid.uuid4())),
            timeout=_UPDATE_TIMEOUT_SECONDS,
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            status, code = _UPDATE_ERRORS.get(cause.type or "", (409, "rejected"))
            raise api_error(status, code, cause.message) from None
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise api_error(409, "case_not_running", "工单流程不存在或已结束") from None
        raise api_error(503, "temporal_unavailable", "工单服务暂时不可用，请稍后重试") from None
    except (TimeoutError, OSError, RuntimeError):
        raise api_error(503, "temporal_unavailable", "工单服务暂时不可用，请稍后重试") from None


def _actor(user: User) -> Actor:
    assert user.id is not None
    return Actor(user_id=user.id, role=user.role.value, unit_id=user.unit_id)


IdempotencyKey = Annotated[str | None, _IDEMPOTENCY_HEADER]


@router.post("/{case_id}/accept", response_model=CaseSnapshot)
async def accept_case(
    case_id: int,
    body: AcceptFields,
    session: SessionDep,
    temporal: TemporalDep,
    user: CurrentUser,
    key: IdempotencyKey = None,
) -> CaseSnapshot:
    """签收: the unit takes the case; verification and callback start."""
    inp = AcceptInput(actor=_actor(user), **body.model_dump())
    return await _act(session, temporal, user, case_id, CaseWorkflow.accept, inp, key)


@router.post("/{case_id}/callbacks", response_model=CaseSnapshot)
async def log_callback(
    case_id: int,
    body: CallbackFields,
    session: SessionDep,
    temporal: TemporalDep,
    user: CurrentUser,
    key: IdempotencyKey = None,
) -> CaseSnapshot:
    """回访: log one call to the rater (reached or not)."""
    inp = CallbackInput(actor=_actor(user), **body.model_dump())
    return await _act(session, temporal, user, case_id, CaseWorkflow.log_callback, inp, key)


@router.post("/{case_id}/verification", response_model=CaseSnapshot)
async def submit_verification(
    case_id: int,
    body: VerificationFields,
    session: SessionDep,
    temporal: TemporalDep,
    user: CurrentUser,
    key: IdempotencyKey = None,
) -> CaseSnapshot:
    """核实结论: valid → rectification; no_legal_basis → explanation."""
    inp = VerificationInput(actor=_actor(user), **body.model_dump())
    return await _act(session, temporal, user, case_id, CaseWorkflow.verify, inp, key)


@router.post("/{case_id}/rectification", response_model=CaseSnapshot)
async def submit_rectification(
    case_id: int,
    body: RectificationFields,
    session: SessionDep,
    temporal: TemporalDep,
    user: CurrentUser,
    key: IdempotencyKey = None,
) -> CaseSnapshot:
    """整改: record what was done (immediate or ledger)."""
    inp = RectificationInput(actor=_actor(user), **body.model_dump())
    return await _act(session, temporal, user, case_id, CaseWorkflow.rectify, inp, key)


@router.post("/{case_id}/explanation", response_model=CaseSnapshot)
async def submit_explanation(
    case_id: int,
    body: ExplanationFields,
    session: SessionDep,
    temporal: TemporalDep,
    user: CurrentUser,
    key: IdempotencyKey = None,
) -> CaseSnapshot:
    """解释说明: why the complaint has no legal basis."""
    inp = ExplanationInput(actor=_actor(user), **body.model_dump())
    return await _act(session, temporal, user, case_id, CaseWorkflow.explain, inp, key)


@router.post("/{case_id}/feedback", response_model=CaseSnapshot)
async def submit_feedback(
    case_id: int,
    body: FeedbackFields,
    session: SessionDep,
    temporal: TemporalDep,
    user: CurrentUser,
    key: IdempotencyKey = None,
) -> CaseSnapshot:
    """反馈: the result the rater will be told; the case is then mailed and closed."""
    inp = FeedbackInput(actor=_actor(user), **body.model_dump())
    return await _act(session, temporal, user, case_id, CaseWorkflow.give_feedback, inp, key)
