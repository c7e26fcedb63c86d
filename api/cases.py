"""Cases (差评工单): the inbox and case page (read from SQL), and every action on a case (Temporal Updates).

Reads never touch Temporal. Each action is an Update on the case workflow (api/case_steps.py): the
API first checks the caller's role and scope against the database, then the workflow's validator
checks stage and fields; a rejection comes back as 409 (wrong stage, already taken), 403 (not yours
to do) or 422 (bad input); 202 means taken and still finishing, 503 means not taken. The action
table at the bottom is the whole list of what each role may do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.service import RPCError, RPCStatusCode

from api.case_steps import StepAccepted, StepCall, StepError, poll_update, take_step
from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep, client_address, visible_unit_ids
from api.errors import ErrorBody, api_error
from api.params import IdempotencyKey, IdPath, Limit, Offset, OptionalIdQuery
from models import case_actions as actions
from models.case_requests import CaseStepRequest
from models.case_types import TERMINAL_STAGES, Actor, CaseSnapshot, DeadlineView, Stage, Verdict
from models.cases import Case, CaseDetail, CaseEvent, CaseEventRead, CasePage, CaseSummary, RaterAnswerView, RaterView
from models.notifications import NoticeView, Notification
from models.organisation import Unit, unit_subtree_ids
from models.policy_store import policy_version
from models.privacy import mask_email, mask_name, mask_phone
from models.rater_links import RaterLink
from models.ratings import Rating
from models.roles import Role
from models.services import ServiceItem, ServiceRecord
from models.users import User
from workflows.case import CaseWorkflow

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


# ---- reads ---------------------------------------------------------------------------------


def _summary_query() -> Any:
    return (
        # sqlmodel's select() is typed for at most four entities; at run time it takes any number.
        select(Case, Unit.name, ServiceItem.name, ServiceRecord.record_no, Rating)  # type: ignore[call-overload]
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
        # Reviewers decide appeals of their office's subtree: they see the cases that went down the appeal path.
        offices = await unit_subtree_ids(session, user.unit_id) if user.unit_id is not None else set()
        return [Case.verdict == Verdict.DISPUTED, col(Case.unit_id).in_(offices)]
    units = await visible_unit_ids(session, user)
    return [] if units is None else [col(Case.unit_id).in_(units)]


@router.get("", response_model=CasePage)
async def list_cases(
    session: SessionDep,
    user: CurrentUser,
    status: Literal["open", "finished"] | None = None,
    stage: Stage | None = None,
    unit_id: OptionalIdQuery = None,
    overdue: bool | None = None,
    escalation_rung: Annotated[int | None, Query(ge=0, le=5, description="at least this rung")] = None,
    due_before: Annotated[datetime | None, Query(description="next running deadline before this time")] = None,
    round: Annotated[int | None, Query(ge=1, le=100)] = None,  # noqa: A002 - the domain's word (第几轮)
    limit: Limit = 50,
    offset: Offset = 0,
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
async def get_case(case_id: IdPath, session: SessionDep, user: CurrentUser) -> CaseDetail:
    """One case: stage, every due date, overdue, rung, round, policy version and the timeline with actors."""
    row = await _visible_case_row(session, user, case_id)
    case, rating = row[0], row[4]
    events = (
        await session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id)))
    ).all()
    links = (
        await session.exec(select(RaterLink).where(RaterLink.case_id == case_id).order_by(col(RaterLink.round)))
    ).all()
    notices = (
        await session.exec(select(Notification).where(Notification.case_id == case_id).order_by(col(Notification.id)))
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
        notices=[
            NoticeView(
                kind=n.kind,
                channel=n.channel,
                recipient=n.recipient_ref,
                status=n.status,
                attempts=n.attempts,
                last_error=n.last_error,
                created_at=n.created_at,
                sent_at=n.sent_at,
            )
            for n in notices
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


async def _reviewer(session: AsyncSession, user: User, case: Case, _body: BaseModel) -> None:
    if user.role != Role.REVIEWER or user.unit_id is None:
        raise api_error(403, "not_reviewer", "只有复核人员可以作出复核决定")
    if case.unit_id not in await unit_subtree_ids(session, user.unit_id):
        raise api_error(403, "not_reviewer", "此申诉不在您所在复核机构的范围内")


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


def _endpoint(action: CaseAction) -> Callable[..., Awaitable[CaseSnapshot | JSONResponse]]:
    async def endpoint(
        case_id: IdPath,
        body: BaseModel,
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        temporal: TemporalDep,
        user: CurrentUser,
        idempotency_key: IdempotencyKey = None,
    ) -> CaseSnapshot | JSONResponse:
        case = (await _visible_case_row(session, user, case_id))[0]
        await action.allowed(session, user, case, body)
        assert user.id is not None
        actor = Actor(user_id=user.id, role=user.role, unit_id=user.unit_id)
        call = StepCall(
            case=case,
            requester=f"user:{user.id}",
            action=action.path,
            update=action.update,
            update_input=action.workflow_input(actor=actor, **body.model_dump()),
            fields=body.model_dump(mode="json"),
            idempotency_key=idempotency_key,
            client=client_address(request),
        )
        try:
            outcome = await take_step(
                session, temporal, call, settings.case_action_wait_seconds, f"/api/v1/cases/{case_id}/requests/{{}}"
            )
        except StepError as exc:
            return step_error_response(exc)
        if isinstance(outcome, StepAccepted):
            return JSONResponse(status_code=202, content=outcome.model_dump())
        return outcome

    # FastAPI reads the body model from the annotation; each action has its own.
    endpoint.__annotations__["body"] = action.fields
    endpoint.__name__ = f"case_{action.path.replace('-', '_')}"
    endpoint.__doc__ = action.summary
    return endpoint


def step_error_response(exc: StepError) -> JSONResponse:
    """A refused or untaken step as the JSON error body, with Retry-After when it was not taken."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return JSONResponse(
        status_code=exc.status, content={"detail": {"code": exc.code, "message": exc.message}}, headers=headers
    )


_STEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": StepAccepted, "description": "Taken (durably accepted) and still finishing: see check_url"},
    409: {"model": ErrorBody, "description": "Refused: the case is not in a stage for this step, or it was taken"},
    503: {"model": ErrorBody, "description": "Not taken (the case service is unavailable): retry after Retry-After"},
}


for _action in CASE_ACTIONS:
    router.add_api_route(
        f"/{{case_id}}/{_action.path}",
        _endpoint(_action),
        methods=["POST"],
        response_model=CaseSnapshot,
        responses=_STEP_RESPONSES,
        summary=_action.summary,
        name=f"case_{_action.path}",
    )


class StepStatus(BaseModel):
    """Where a step asked for by a request stands."""

    request_id: str
    action: str
    status: Literal["completed", "in_progress", "refused", "not_taken"]
    stage: Stage | None = None
    message: str = ""


@router.get("/{case_id}/requests/{request_id}", response_model=StepStatus)
async def get_step_request(
    case_id: IdPath,
    request_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")],
    session: SessionDep,
    temporal: TemporalDep,
    user: CurrentUser,
) -> StepStatus:
    """The outcome of a step that was answered 202 (or of any step request on a case the caller can see)."""
    case = (await _visible_case_row(session, user, case_id))[0]
    request = (
        await session.exec(
            select(CaseStepRequest).where(CaseStepRequest.case_id == case_id, CaseStepRequest.update_id == request_id)
        )
    ).first()
    if request is None:
        raise api_error(404, "not_found", f"办理请求 {request_id} 不存在")
    status = StepStatus(request_id=request_id, action=request.action, status="in_progress")
    if request.completed_at is not None:
        event = (
            await session.exec(
                select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.event_key == request.event_key)
            )
        ).first()
        return status.model_copy(update={"status": "completed", "stage": event.stage if event else case.stage})
    try:
        client = await asyncio.wait_for(temporal.client(), timeout=2)
        answer = await poll_update(client, case.workflow_id, request_id, accepted_only=False)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return status.model_copy(update={"status": "not_taken", "message": "此请求未被办理"})
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):  # the poll's own timeout
            return status
        raise api_error(503, "temporal_unavailable", "工单服务暂时不可用，请稍后重试") from None
    except (TimeoutError, OSError, RuntimeError):
        raise api_error(503, "temporal_unavailable", "工单服务暂时不可用，请稍后重试") from None
    if answer.outcome.HasField("failure"):
        failure = answer.outcome.failure
        not_taken = failure.application_failure_info.type == "Expired"
        return status.model_copy(update={"status": "not_taken" if not_taken else "refused", "message": failure.message})
    if answer.outcome.HasField("success"):
        [snapshot] = await client.data_converter.decode(answer.outcome.success.payloads, [CaseSnapshot])
        return status.model_copy(update={"status": "completed", "stage": snapshot.stage})
    return status
