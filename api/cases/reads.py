"""Case reads (查询): the inbox and the case page, from the database; the outcome of a step request.

Reads never touch Temporal, except for the status of a step request the database has not seen finish.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.service import RPCError, RPCStatusCode

from api.cases.scope import scope_conditions, summary, summary_query, visible_case_row
from api.cases.steps import failure_refusal, poll_update
from api.deps import CurrentUser, SessionDep, TemporalDep
from api.errors import api_error
from api.params import IdPath, IsoText, Limit, Offset, OptionalIdQuery
from models.calendar import LoadedCalendar, load_calendar
from models.case.records import (
    Case,
    CaseDetail,
    CaseEvent,
    CaseEventRead,
    CasePage,
    CaseSummary,
    DeadlineRead,
    RaterAnswerView,
    RaterView,
)
from models.case.requests import CaseStepRequest
from models.case.vocabulary import DEADLINE_LABELS_ZH, TERMINAL_STAGES, CaseSnapshot, DeadlineView, ErrorType, Stage
from models.deadlines import DueExplanation, explain_recorded, explain_set_due
from models.notifications import NoticeView, Notification
from models.policy import DeadlineName, PinnedPolicy
from models.policy_store import policy_version
from models.privacy import mask_email, mask_name, mask_phone
from models.rater_links import RaterLink
from models.rating_coverage import covered_records
from models.ratings import Rating
from models.roles import Role
from models.services import ServiceRecord
from models.users import User

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


# A case with no running deadline (waiting on the rater, or finished) sorts after every case with one.
_ORDER = {
    "newest": (col(Case.id).desc(),),
    "due": (col(Case.next_due_at).asc().nulls_last(), col(Case.id)),
}


@router.get("", response_model=CasePage)
async def list_cases(
    session: SessionDep,
    user: CurrentUser,
    status: Literal["open", "finished"] | None = None,
    stage: Stage | None = None,
    unit_id: OptionalIdQuery = None,
    overdue: bool | None = None,
    escalation_rung: Annotated[int | None, Query(ge=0, le=5, description="at least this rung")] = None,
    due_before: Annotated[datetime | None, IsoText, Query(description="next running deadline before this time")] = None,
    round: Annotated[int | None, Query(ge=1, le=100)] = None,  # noqa: A002 - the domain's word (第几轮)
    sort: Annotated[
        Literal["newest", "due"], Query(description="newest first, or the nearest running deadline first")
    ] = "newest",
    limit: Limit = 50,
    offset: Offset = 0,
) -> CasePage:
    """Cases the caller may see (own unit; a supervisor's subtree; appeals for reviewers; all for admins)."""
    conditions = await scope_conditions(session, user)
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
        await session.exec(summary_query().where(*conditions).order_by(*_ORDER[sort]).limit(limit).offset(offset))
    ).all()
    pinned = await _pinned_policies(session, [row[0] for row in rows])
    items = [CaseSummary(**summary(*row, level_label=_level_label(pinned, row[0], row[4]))) for row in rows]
    return CasePage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(case_id: IdPath, session: SessionDep, user: CurrentUser) -> CaseDetail:
    """One case: stage, every due date, overdue, rung, round, policy version and the timeline with actors."""
    row = await visible_case_row(session, user, case_id)
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
    pinned = await _pinned_policies(session, [case])
    policy = pinned[(case.policy_code, case.policy_version)]
    calendar = await load_calendar(session)
    covered = await covered_records(session, rating.id)  # a bundle rating's other records (一次办多件, 一件事)
    record = await session.get(ServiceRecord, rating.record_id) if covered else None
    return CaseDetail(
        **summary(*row, level_label=_level_label(pinned, case, rating)),
        workflow_id=case.workflow_id,
        verdict=case.verdict,
        policy_code=case.policy_code,
        policy_version=case.policy_version,
        deadlines=[_deadline_read(DeadlineView.model_validate(d), policy, calendar) for d in case.deadlines],
        workflow_started=case.workflow_started_at is not None,
        comment=rating.comment,
        rater=_rater_view(user, policy, rating),
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
                held_until=n.next_attempt_at if n.attempts == 0 else None,
                sent_at=n.sent_at,
            )
            for n in notices
        ],
        service_stage=rating.stage,
        bundle_kind=record.bundle_kind if record else None,
        theme_name=record.theme_name if record else None,
        covered_records=covered,
    )


async def _pinned_policies(session: AsyncSession, cases: list[Case]) -> dict[tuple[str, int], PinnedPolicy | None]:
    """The policy version each case pinned, looked up once per (code, version) for the whole page."""
    found: dict[tuple[str, int], PinnedPolicy | None] = {}
    for case in cases:
        key = (case.policy_code, case.policy_version)
        if key not in found:
            found[key] = await policy_version(session, *key)
    return found


def _level_label(pinned: dict[tuple[str, int], PinnedPolicy | None], case: Case, rating: Rating) -> str:
    """The level as the case's own policy names it (national 很差, Yantai 非常不满意); the code if it is gone."""
    policy = pinned.get((case.policy_code, case.policy_version))
    return policy.profile.level(rating.level.value).label if policy is not None else rating.level.value


def _deadline_read(view: DeadlineView, policy: PinnedPolicy | None, calendar: LoadedCalendar) -> DeadlineRead:
    """A stored deadline with its Chinese name and 时限说明.

    The rule comes from the case's pinned policy version, never the region's current one, so the
    explanation is of the rule the clock actually ran under. A due time a person set (督办延期, the
    unit's 台账 date) is not the rule's result, so it is explained as such rather than walked.
    """
    explanation: DueExplanation | None = None
    if policy is not None:
        spec = policy.profile.deadline(view.name).within
        if view.extended:
            explanation = explain_set_due(view.started_at, spec, view.due_at, "extended")
        elif view.name == DeadlineName.RECTIFICATION_LEDGER_MAX:
            explanation = explain_set_due(view.started_at, spec, view.due_at, "set_by_unit")
        else:
            explanation = explain_recorded(view.started_at, spec, view.due_at, calendar)
    return DeadlineRead(**view.model_dump(), label=DEADLINE_LABELS_ZH[view.name], explanation=explanation)


def _rater_view(user: User, policy: PinnedPolicy | None, rating: Rating) -> RaterView:
    """Masked contact; reviewers see none at all unless the case's pinned policy lets them."""
    if user.role == Role.REVIEWER and (policy is None or not policy.profile.reviewers_see_rater_identity):
        return RaterView(real_name=rating.real_name, name=None, phone=None, email=None)
    return RaterView(
        real_name=rating.real_name,
        name=mask_name(rating.rater_name),
        phone=mask_phone(rating.rater_phone),
        email=mask_email(rating.rater_email),
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
    case = (await visible_case_row(session, user, case_id))[0]
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
        refused = failure_refusal(answer.outcome.failure)
        not_taken = refused.error_type == ErrorType.EXPIRED
        return status.model_copy(update={"status": "not_taken" if not_taken else "refused", "message": refused.message})
    if answer.outcome.HasField("success"):
        [snapshot] = await client.data_converter.decode(answer.outcome.success.payloads, [CaseSnapshot])
        return status.model_copy(update={"status": "completed", "stage": snapshot.stage})
    return status
