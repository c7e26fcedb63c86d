"""Cases (差评工单): the inbox and case page (read from SQL), and every action on a case (Temporal Updates).

Reads never touch Temporal. Each action is an Update on the case workflow: the API first checks
the caller's role and scope against the database, then the workflow's validator checks stage and
fields; a rejection comes back as 409 (wrong stage), 403 (not yours to do) or 422 (bad input).
The action table at the bottom is the whole list of what each role may do.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentUser, SessionDep, TemporalDep, audit_user_action, visible_unit_ids
from api.errors import api_error
from api.idempotency import check_key
from models import case_actions as actions
from models.case_types import TERMINAL_STAGES, Actor, CaseSnapshot, DeadlineView, ErrorType, Stage, Verdict
from models.cases import Case, CaseDetail, CaseEvent, CaseEventRead, CasePage, CaseSummary, RaterAnswerView, RaterView
from models.organisation import Unit, unit_subtree_ids
from models.policy_store import policy_version
from models.privacy import mask_email, mask_name, mask_phone
from models.rater_links import RaterLink
from models.ratings import Rating
from models.roles import Role
from models.services import ServiceItem, ServiceRecord
from models.users import User
from runtime.temporal import TemporalConnection
from workflows.case import CaseWorkflow

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

# A validator's ApplicationError type → (HTTP status, error code).
_UPDATE_ERRORS = {
    ErrorType.WRONG_STAGE: (409, "wrong_stage"),
    ErrorType.NOT_ALLOWED: (403, "not_allowed"),
    ErrorType.INVALID_INPUT: (422, "invalid_input"),
}
_UPDATE_TIMEOUT_SECONDS = 30


# ---- reads ---------------------------------------------------------------------------------


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
        "round": case.round,
        "overdue": case.overdue,
        "escalation_rung": case.escalation_rung,
        "next_due_at": case.next_due_at,
        "outcome": case.outcome,
        "opened_at": case.opened_at,
        "closed_at": case.closed_at,
    }


async def _scope_conditions(session: AsyncSession, user: User) -> list[Any]:
    """SQL conditions limiting cases to what the user may see."""
    if user.role == Role.REVIEWER:
        # Reviewers decide appeals: they see the cases that went down the appeal path.
        return [Case.verdict == Verdict.DISPUTED]
    units = await visible_unit_ids(session, user)
    return [] if units is None else [col(Case.unit_id).in_(units)]


@router.get("", response_model=CasePage)
async def list_cases(
    session: SessionDep,
    user: CurrentUser,
    status: Literal["open", "finished"] | None = None,
    stage: Stage | None = None,
    unit_id: int | None = None,
    overdue: bool | None = None,
    escalation_rung: Annotated[int | None, Query(ge=0, le=5, description="at least this rung")] = None,
    due_before: Annotated[datetime | None, Query(description="next running deadline before this time")] = None,
    round: Annotated[int | None, Query(ge=1)] = None,  # noqa: A002 - the domain's word (第几轮)
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasePage:
    """Cases the caller may see (own unit; a supervisor's subtree; appeals for reviewers; all for admins)."""
    conditions = await _scope_conditions(session, user)
    if status == "open":
        conditions.append(col(Case.stage).not_in(TERMINAL_STAGES))
    elif status == "finished":
        conditions.append(col(Case.stage).in_(TERMINAL_STAGES))
    if stage is not None:
        conditions.append(Case.stage == stage)
    if unit_id is not None:
        conditions.append(Case.unit_id == unit_id)
    if overdue is not None:
        conditions.append(Case.overdue == overdue)
    if escalation_rung is not None:
        conditions.append(col(Case.escalation_rung) >= escalation_rung)
    if due_before is not None:
        if due_before.tzinfo is None:
            raise api_error(
                422, "naive_time", "due_before 须带时区，例如 2026-12-01T00:00:00+08:00", field="due_before"
            )
        conditions.append(col(Case.next_due_at) < due_before)
    if round is not None:
        conditions.append(Case.round == round)
    total = (await session.exec(select(func.count()).select_from(Case).where(*conditions))).one()
    rows = (
        await session.exec(
            _summary_query().where(*conditions).order_by(col(Case.id).desc()).limit(limit).offset(offset)
        )
    ).all()
    return CasePage(items=[CaseSummary(**_summary(*row)) for row in rows], total=total, limit=limit, offset=offset)


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(case_id: int, session: SessionDep, user: CurrentUser) -> CaseDetail:
    """One case: stage, every due date, overdue, rung, round, policy version and the timeline with actors."""
    row = await _visible_case_row(session, user, case_id)
    case, rating = row[0], row[4]
    events = (
        await session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id)))
    ).all()
    links = (
        await session.exec(select(RaterLink).where(RaterLink.case_id == case_id).order_by(col(RaterLink.round)))
    ).all()
    return CaseDetail(
        **_summary(*row),
        workflow_id=case.workflow_id,
        verdict=case.verdict,
        policy_code=case.policy_code,
        policy_version=case.policy_version,
        deadlines=[DeadlineView.model_validate(d) for d in case.deadlines],
        workflow_started=case.workflow_started_at is not None,
        comment=rating.comment,
        rater=await _rater_view(session, user, case, rating),
        rater_answers=[
            RaterAnswerView(
                round=link.round, satisfied=link.answer_satisfied, comment=link.answer_comment, answered_at=link.used_at
            )
            for link in links
        ],
        timeline=[
            CaseEventRead(stage=e.stage, round=e.round, action=e.action, actor=e.actor, at=e.at, data=e.data)
            for e in events
        ],
    )


async def _rater_view(session: AsyncSession, user: User, case: Case, rating: Rating) -> RaterView:
    """Masked contact; reviewers see none at all unless the case's policy lets them."""
    if user.role == Role.REVIEWER:
        pinned = await policy_version(session, case.policy_code, case.policy_version)
        if pinned is None or not pinned.profile.reviewers_see_rater_identity:
            return RaterView(real_name=rating.real_name, name=None, phone=None, email=None)
    return RaterView(
        real_name=rating.real_name,
        name=mask_name(rating.rater_name),
        phone=mask_phone(rating.rater_phone),
        email=mask_email(rating.rater_email),
    )


async def _visible_case_row(session: AsyncSession, user: User, case_id: int) -> Any:
    conditions = await _scope_conditions(session, user)
    row = (await session.exec(_summary_query().where(Case.id == case_id, *conditions))).first()
    # Another unit's case answers exactly like a missing one, so ids cannot be probed.
    if row is None:
        raise api_error(404, "not_found", f"工单 {case_id} 不存在或无权查看")
    return row


# ---- actions -------------------------------------------------------------------------------

ScopeCheck = Callable[[AsyncSession, User, Case, BaseModel], Awaitable[None]]


async def _own_unit(_session: AsyncSession, user: User, case: Case, _body: BaseModel) -> None:
    if user.role != Role.UNIT_STAFF or user.unit_id != case.unit_id:
        raise api_error(403, "not_handler", "只有承办单位的工作人员可以办理此工单")


async def _supervises(session: AsyncSession, user: User, case: Case, _body: BaseModel) -> None:
    if user.role != Role.SUPERVISOR or user.unit_id is None:
        raise api_error(403, "not_supervisor", "只有督办人员可以执行此操作")
    if case.unit_id not in await unit_subtree_ids(session, user.unit_id):
        raise api_error(403, "not_supervisor", "此工单不在您督办的范围内")


async def _supervises_target(session: AsyncSession, user: User, case: Case, body: BaseModel) -> None:
    await _supervises(session, user, case, body)
    assert isinstance(body, actions.ReassignFields) and user.unit_id is not None
    if await session.get(Unit, body.to_unit_id) is None:
        raise api_error(422, "unknown_unit", f"单位 {body.to_unit_id} 不存在", field="to_unit_id")
    if body.to_unit_id not in await unit_subtree_ids(session, user.unit_id):
        raise api_error(403, "not_supervisor", "只能改派到您督办范围内的单位")


async def _reviewer(_session: AsyncSession, user: User, _case: Case, _body: BaseModel) -> None:
    if user.role != Role.REVIEWER:
        raise api_error(403, "not_reviewer", "只有复核人员可以作出复核决定")


async def _act(
    session: AsyncSession,
    temporal: TemporalConnection,
    user: User,
    case_id: int,
    update: Any,
    update_input: BaseModel,
    idempotency_key: str | None,
) -> CaseSnapshot:
    """Send one Update to the case workflow and turn a rejection into an HTTP error."""
    case = (await _visible_case_row(session, user, case_id))[0]
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


@dataclass(frozen=True)
class CaseAction:
    """One POST /api/v1/cases/{id}/<path>: body model, workflow input model, Update, who may call it."""

    path: str
    fields: type[BaseModel]
    workflow_input: type[BaseModel]
    update: Any
    allowed: ScopeCheck
    summary: str


CASE_ACTIONS: list[CaseAction] = [
    CaseAction("accept", actions.AcceptFields, actions.AcceptInput, CaseWorkflow.accept, _own_unit, "签收"),
    CaseAction(
        "callbacks", actions.CallbackFields, actions.CallbackInput, CaseWorkflow.log_callback, _own_unit, "记录一次回访"
    ),
    CaseAction(
        "verification",
        actions.VerificationFields,
        actions.VerificationInput,
        CaseWorkflow.verify,
        _own_unit,
        "核实结论",
    ),
    CaseAction(
        "ledger", actions.LedgerFields, actions.LedgerInput, CaseWorkflow.ledger, _own_unit, "列入台账（设定整改期限）"
    ),
    CaseAction(
        "rectification",
        actions.RectificationFields,
        actions.RectificationInput,
        CaseWorkflow.rectify,
        _own_unit,
        "整改完成",
    ),
    CaseAction(
        "explanation", actions.ExplanationFields, actions.ExplanationInput, CaseWorkflow.explain, _own_unit, "解释说明"
    ),
    CaseAction("appeal", actions.AppealFields, actions.AppealInput, CaseWorkflow.file_appeal, _own_unit, "提出申诉"),
    CaseAction(
        "feedback", actions.FeedbackFields, actions.FeedbackInput, CaseWorkflow.give_feedback, _own_unit, "反馈评价人"
    ),
    CaseAction(
        "extension-requests",
        actions.ExtensionRequestFields,
        actions.ExtensionRequestInput,
        CaseWorkflow.request_extension,
        _own_unit,
        "申请延期",
    ),
    CaseAction(
        "extension-decision",
        actions.ExtensionDecisionFields,
        actions.ExtensionDecisionInput,
        CaseWorkflow.decide_extension,
        _supervises,
        "审批延期申请",
    ),
    CaseAction(
        "deadline-extension",
        actions.ExtendFields,
        actions.ExtendInput,
        CaseWorkflow.extend_deadline,
        _supervises,
        "督办延期",
    ),
    CaseAction("reminders", actions.RemindFields, actions.RemindInput, CaseWorkflow.remind, _supervises, "督办提醒"),
    CaseAction(
        "reassignment", actions.ReassignFields, actions.ReassignInput, CaseWorkflow.reassign, _supervises_target, "改派"
    ),
    CaseAction(
        "instructions", actions.InstructionFields, actions.InstructionInput, CaseWorkflow.instruct, _supervises, "批示"
    ),
    CaseAction(
        "appeal-decision",
        actions.AppealDecisionFields,
        actions.AppealDecisionInput,
        CaseWorkflow.decide_appeal,
        _reviewer,
        "复核决定",
    ),
]


def _endpoint(action: CaseAction) -> Callable[..., Awaitable[CaseSnapshot]]:
    async def endpoint(
        case_id: int,
        body: BaseModel,
        request: Request,
        session: SessionDep,
        temporal: TemporalDep,
        user: CurrentUser,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", description="A retried click with the same key acts once")
        ] = None,
    ) -> CaseSnapshot:
        check_key(idempotency_key)
        case = (await _visible_case_row(session, user, case_id))[0]
        await action.allowed(session, user, case, body)
        assert user.id is not None
        actor = Actor(user_id=user.id, role=user.role, unit_id=user.unit_id)
        inp = action.workflow_input(actor=actor, **body.model_dump())
        snapshot = await _act(session, temporal, user, case_id, action.update, inp, idempotency_key)
        audit_user_action(
            session,
            request,
            user,
            f"case.{action.path}",
            "case",
            case_id,
            unit_id=case.unit_id,
            before={"stage": case.stage.value, "unit_id": case.unit_id},
            after={**body.model_dump(mode="json"), "stage": snapshot.stage.value, "unit_id": snapshot.unit_id},
        )
        await session.commit()
        return snapshot

    # FastAPI reads the body model from the annotation; each action has its own.
    endpoint.__annotations__["body"] = action.fields
    endpoint.__name__ = f"case_{action.path.replace('-', '_')}"
    endpoint.__doc__ = action.summary
    return endpoint


for _action in CASE_ACTIONS:
    router.add_api_route(
        f"/{{case_id}}/{_action.path}",
        _endpoint(_action),
        methods=["POST"],
        response_model=CaseSnapshot,
        summary=_action.summary,
        name=f"case_{_action.path}",
    )
