"""The steps of a root-cause rectification over HTTP: one route each, answered like a case's steps.

`POST /api/v1/root-cause-rectifications/{id}/<step>`: the API checks that the caller may see the
rectification (404) and stands to it as the step needs (403: the responsible unit's staff report
progress and the result; a supervisor above the unit accepts, returns or withdraws), then asks the
workflow. 200 taken, 202 taken and finishing, 409 refused by the workflow (the stage moved on, or the
step was already taken: a second 验收 is a 409 `already_taken`), 422 bad input, 503 not taken. The
Update carries `expires_at`, so a call that stopped waiting knows a late delivery will not apply it
(docs/decisions/0007). An Idempotency-Key makes a retry the same Update. Audit records are written
by the workflow's record activity, with the event, exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, WorkflowUpdateStage
from temporalio.service import RPCError, RPCStatusCode

from api.cases.actions import step_error_response
from api.cases.steps import NOT_TAKEN, StepAccepted, StepError, failure_refusal, poll_update, refusal
from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep
from api.errors import ErrorBody, api_error
from api.params import IdempotencyKey, IdPath
from api.root_cause import rectification_read, visible_rectification
from config import Settings
from models.case.vocabulary import Actor
from models.db import utcnow
from models.organisation import unit_subtree_ids
from models.roles import Role
from models.root_cause import RootCauseRead, RootCauseRectification
from models.root_cause_io import (
    AcceptanceFields,
    AcceptanceInput,
    ProgressFields,
    ProgressInput,
    ResultFields,
    ResultInput,
    ReturnFields,
    ReturnInput,
    WithdrawalFields,
    WithdrawalInput,
)
from models.users import User
from runtime.temporal import TemporalConnection
from workflows.root_cause import RootCauseWorkflow

router = APIRouter(prefix="/api/v1/root-cause-rectifications", tags=["root-cause rectifications"])

_EXPIRY_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True)
class RootCauseStep:
    """One step: its path segment, Chinese label, body, workflow input, Update, and who takes it."""

    name: str
    label: str
    fields: type[BaseModel]
    workflow_input: type[BaseModel]
    update: Any  # the workflow's Update method
    by_unit: bool  # True: the responsible unit's staff; False: a supervisor above the unit


ROOT_CAUSE_STEPS = (
    RootCauseStep("progress", "报告整改进展", ProgressFields, ProgressInput, RootCauseWorkflow.report_progress, True),
    RootCauseStep("result", "报告整改结果", ResultFields, ResultInput, RootCauseWorkflow.submit_result, True),
    RootCauseStep("acceptance", "验收通过", AcceptanceFields, AcceptanceInput, RootCauseWorkflow.accept_result, False),
    RootCauseStep("return", "退回整改", ReturnFields, ReturnInput, RootCauseWorkflow.return_result, False),
    RootCauseStep("withdrawal", "撤销根源整改", WithdrawalFields, WithdrawalInput, RootCauseWorkflow.withdraw, False),
)
STEPS_BY_NAME = {step.name: step for step in ROOT_CAUSE_STEPS}


async def may_take(session: AsyncSession, user: User, row: RootCauseRectification, step: RootCauseStep) -> bool:
    """Whether the person stands to the rectification as the step needs."""
    if step.by_unit:
        return user.role == Role.UNIT_STAFF and user.unit_id == row.unit_id
    return (
        user.role == Role.SUPERVISOR
        and user.unit_id is not None
        and row.unit_id in await unit_subtree_ids(session, user.unit_id)
    )


async def run_root_cause_step(
    step: RootCauseStep,
    rectification_id: int,
    body: BaseModel,
    *,
    session: AsyncSession,
    settings: Settings,
    temporal: TemporalConnection,
    user: User,
    idempotency_key: str | None,
) -> RootCauseRead | StepAccepted:
    """Take one step for a person, API and pages alike (raises StepError, or the API's 403/404)."""
    row = await visible_rectification(session, user, rectification_id)
    if not await may_take(session, user, row, step):
        who = "承办单位的工作人员" if step.by_unit else "督办此单位的督办人员"
        raise api_error(403, "not_allowed", f"只有{who}可以{step.label}")
    if row.workflow_started_at is None:
        raise StepError(409, "starting", "根源整改流程正在建立，请稍后再试")
    assert user.id is not None
    actor = Actor(user_id=user.id, role=user.role, unit_id=user.unit_id)
    # The same key from the same person is the same Update: Temporal takes it once.
    update_id = (
        f"u{user.id}-" + hashlib.sha256(f"{step.name}\x00{idempotency_key}".encode()).hexdigest()[:32]
        if idempotency_key
        else uuid.uuid4().hex
    )
    wait = settings.case_action_wait_seconds
    started = utcnow()
    inp = step.workflow_input(
        actor=actor, expires_at=started + timedelta(seconds=wait) - _EXPIRY_MARGIN, **body.model_dump()
    )
    accepted = StepAccepted(request_id=update_id, check_url=f"/api/v1/root-cause-rectifications/{rectification_id}")
    workflow_id = row.workflow_id
    try:
        async with asyncio.timeout(wait):
            client = await temporal.client()
            handle = client.get_workflow_handle_for(RootCauseWorkflow.run, workflow_id)
            update = await handle.start_update(
                step.update, inp, id=update_id, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise StepError(409, "not_running", "根源整改流程不存在或已结束") from None
        return await _settle(temporal, workflow_id, update_id, accepted)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, OSError, RuntimeError):
        return await _settle(temporal, workflow_id, update_id, accepted)
    remaining = max((started + timedelta(seconds=wait) - utcnow()).total_seconds(), 0.5)
    try:
        await asyncio.wait_for(update.result(), timeout=remaining)
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
        return accepted
    await session.refresh(row)  # the activity wrote the new state in its own transaction
    return await rectification_read(session, row)


async def _settle(
    temporal: TemporalConnection, workflow_id: str, update_id: str, accepted: StepAccepted
) -> StepAccepted:
    """After giving up waiting: 202 if the workflow took the step after all, 503 "not taken" otherwise."""
    try:
        client = await asyncio.wait_for(temporal.client(), timeout=3)
        response = await poll_update(client, workflow_id, update_id, accepted_only=True)
    except (RPCError, TimeoutError, OSError, RuntimeError):
        response = None
    if response is not None:
        if response.outcome.HasField("failure"):
            raise failure_refusal(response.outcome.failure)
        if response.stage >= UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED:
            return accepted
    raise StepError(503, "not_taken", NOT_TAKEN)


def _endpoint(step: RootCauseStep) -> Callable[..., Awaitable[RootCauseRead | JSONResponse]]:
    async def endpoint(
        rectification_id: IdPath,
        body: BaseModel,
        session: SessionDep,
        settings: SettingsDep,
        temporal: TemporalDep,
        user: CurrentUser,
        idempotency_key: IdempotencyKey = None,
    ) -> RootCauseRead | JSONResponse:
        try:
            outcome = await run_root_cause_step(
                step, rectification_id, body, session=session, settings=settings, temporal=temporal, user=user,
                idempotency_key=idempotency_key,
            )  # fmt: skip
        except StepError as exc:
            return step_error_response(exc)
        if isinstance(outcome, StepAccepted):
            return JSONResponse(status_code=202, content=outcome.model_dump())
        return outcome

    endpoint.__annotations__["body"] = step.fields
    endpoint.__name__ = f"root_cause_{step.name}"
    endpoint.__doc__ = step.label
    return endpoint


_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": StepAccepted, "description": "Taken (durably accepted) and still finishing: read it again"},
    403: {"model": ErrorBody, "description": "Not the caller's to take"},
    404: {"model": ErrorBody, "description": "Not found (or not visible to the caller)"},
    409: {"model": ErrorBody, "description": "Refused: not in a stage for this step, or already taken"},
    422: {"model": ErrorBody, "description": "Invalid input: the field is named"},
    503: {
        "model": ErrorBody,
        "description": "Not taken (the workflow service is unavailable): retry after Retry-After",
    },
}

for _step in ROOT_CAUSE_STEPS:
    router.add_api_route(
        f"/{{rectification_id}}/{_step.name}",
        _endpoint(_step),
        methods=["POST"],
        response_model=RootCauseRead,
        responses=_RESPONSES,
        summary=_step.label,
        name=f"root_cause_{_step.name}",
    )
