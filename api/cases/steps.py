"""Taking a case step (办理): one request row, one Update with a deadline, and an answer whose meaning is certain.

Every caller that asks the case workflow to act (the unit's, supervisors' and reviewers' steps, the
rater's answer page) goes through `take_step`, and it ends in exactly one of:

- the step was taken and finished → the workflow's snapshot (HTTP 200);
- the step was taken (durably accepted) but is still finishing → `StepAccepted` (HTTP 202), with the
  address where its outcome can be read;
- the step was refused by the workflow → `StepError` 409 (stage, already taken), 403 or 422;
- the step was not taken → `StepError` 503 with Retry-After. The Update carries `expires_at`; the
  workflow's validator refuses it after that moment, so a call that stopped waiting knows for
  certain that a late delivery will not apply it.

The step's audit record is written by the workflow's record activity together with its timeline
event, so it exists exactly once however the HTTP call ended. The request row written here gives
that record the caller's address, and makes an Idempotency-Key retry reuse the same Update id (a
key reused for another step or body is refused).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models.case.records import Case, CaseEvent
from models.case.requests import CaseStepRequest
from models.case.vocabulary import CaseSnapshot, ErrorType
from models.db import utcnow
from runtime.temporal import TemporalConnection
from workflows.case import CaseWorkflow

RETRY_AFTER_SECONDS = 5
# Margin between the Update's expiry and the moment this side gives up on it: covers the delay
# between a workflow task starting (the validator's "now") and its answer reaching us, and clock skew.
_EXPIRY_MARGIN = timedelta(seconds=1)
_SETTLE_TIMEOUT = timedelta(seconds=3)
# How long the last look waits for an Update to show as accepted. The case writes its timeline inside
# the workflow task that accepts a step (a local activity), so a slow write delays the acceptance too;
# a task still running reports what it has decided, acceptance included, within 80 % of its timeout
# (10 s by default). A task that started before the expiry has therefore shown its acceptance by
# expiry + 10 s, or it died and its retry, after the expiry, refuses the Update.
_ACCEPTANCE_SETTLE = timedelta(seconds=11)

# A refusal's ApplicationError type → (HTTP status, error code).
_REFUSALS = {
    ErrorType.WRONG_STAGE: (409, "wrong_stage"),
    ErrorType.ALREADY_TAKEN: (409, "already_taken"),
    ErrorType.NOT_ALLOWED: (403, "not_allowed"),
    ErrorType.INVALID_INPUT: (422, "invalid_input"),
}
NOT_TAKEN = "工单服务暂时繁忙或不可用，此次操作未办理，请稍后重试"


class StepError(Exception):
    """A step that was refused or not taken; status and code say which."""

    def __init__(self, status: int, code: str, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.error_type = status, code, message, error_type

    @property
    def retry_after(self) -> int | None:
        return RETRY_AFTER_SECONDS if self.status == 503 else None


class StepAccepted(BaseModel):
    """HTTP 202: the workflow has taken the step durably and is still finishing it."""

    status: str = "accepted"
    request_id: str
    check_url: str
    message: str = "操作已提交，办理结果待定；请通过 check_url 查看是否已办理"


@dataclass(frozen=True)
class StepCall:
    """What one step asks: the case, who asks, which step, the Update and its input."""

    case: Case
    requester: str  # "user:<id>" or "rater:<link id>"
    action: str  # the step's name, e.g. accept, callbacks, rater_response
    update: Any
    update_input: Any  # a models.case.step_inputs *Input; its expires_at is set here
    fields: dict[str, Any]  # what the caller sent, for the request fingerprint
    idempotency_key: str | None = None
    client: str = ""


def request_fingerprint(action: str, fields: dict[str, Any]) -> str:
    """The same step with the same fields gives the same fingerprint."""
    body = json.dumps({"action": action, "fields": fields}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


async def record_request(session: AsyncSession, call: StepCall, case_id: int) -> CaseStepRequest:
    """The request row, committed before the Update is sent; a retry with the same key gets the first row."""
    fingerprint = request_fingerprint(call.action, call.fields)
    if call.idempotency_key is not None:
        existing = await _keyed_request(session, call, case_id)
        if existing is not None:
            return _same_request(existing, fingerprint)
    request = CaseStepRequest(
        update_id=uuid.uuid4().hex,
        case_id=case_id,
        requester=call.requester,
        action=call.action,
        idempotency_key=call.idempotency_key,
        request_hash=fingerprint,
        client=call.client[:64],
    )
    session.add(request)
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent retry with the same key wrote its row first: act as that request.
        await session.rollback()
        existing = await _keyed_request(session, call, case_id)
        if existing is None:
            raise
        return _same_request(existing, fingerprint)
    return request


async def _keyed_request(session: AsyncSession, call: StepCall, case_id: int) -> CaseStepRequest | None:
    return (
        await session.exec(
            select(CaseStepRequest).where(
                CaseStepRequest.case_id == case_id,
                CaseStepRequest.requester == call.requester,
                CaseStepRequest.idempotency_key == call.idempotency_key,
            )
        )
    ).first()


def _same_request(existing: CaseStepRequest, fingerprint: str) -> CaseStepRequest:
    if existing.request_hash != fingerprint:
        raise StepError(
            422, "idempotency_key_reused", "此 Idempotency-Key 已用于另一项操作或不同的内容，请换一个新的键"
        )
    return existing


async def take_step(
    session: AsyncSession, temporal: TemporalConnection, call: StepCall, wait_seconds: float, check_url: str
) -> CaseSnapshot | StepAccepted:
    """Ask the workflow to take the step, waiting at most wait_seconds (see the module docstring)."""
    # Read before any commit or rollback: a rolled-back session expires the loaded case.
    case_id, workflow_id, case_round = call.case.id, call.case.workflow_id, call.case.round
    assert case_id is not None
    if call.case.workflow_started_at is None:
        raise StepError(409, "case_starting", "工单正在建立，请稍后再试")
    request = await record_request(session, call, case_id)
    update_id = request.update_id
    accepted = StepAccepted(request_id=update_id, check_url=check_url.format(update_id))
    if await _taken_in_an_earlier_round(session, request, case_round):
        # A retry of a step recorded before the case was reopened: the new round's run does not know
        # the Update id, so sending it again would take the step a second time.
        return accepted
    started = utcnow()
    wait = timedelta(seconds=wait_seconds)
    call.update_input.expires_at = started + wait - _EXPIRY_MARGIN
    try:
        async with asyncio.timeout(wait_seconds):  # one deadline for connecting and being accepted
            client = await temporal.client()
            handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id)
            update = await handle.start_update(
                call.update, call.update_input, id=update_id, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise StepError(409, "case_not_running", "工单流程不存在或已结束") from None
        return await _settle(session, temporal, workflow_id, update_id, accepted)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, OSError, RuntimeError):
        return await _settle(session, temporal, workflow_id, update_id, accepted)
    remaining = max((started + wait - utcnow()).total_seconds(), 0.5)
    try:
        snapshot: CaseSnapshot = await asyncio.wait_for(update.result(), timeout=remaining)
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
        return accepted
    return snapshot


async def _taken_in_an_earlier_round(session: AsyncSession, request: CaseStepRequest, case_round: int) -> bool:
    if request.completed_at is None or request.event_key is None:
        return False
    event_round = (
        await session.exec(
            select(CaseEvent.round).where(
                CaseEvent.case_id == request.case_id, CaseEvent.event_key == request.event_key
            )
        )
    ).first()
    return event_round is not None and event_round != case_round


async def _settle(
    session: AsyncSession, temporal: TemporalConnection, workflow_id: str, update_id: str, accepted: StepAccepted
) -> StepAccepted:
    """After giving up waiting: 202 if the step was taken after all, 503 "not taken" otherwise.

    "Not taken" holds because the Update's expiry has passed by now: a workflow task that picks it up
    from here on refuses it. What remains open is a task that started before the expiry and is still
    running after this last look (more than about four seconds): docs/decisions/0007.
    """
    try:
        client = await asyncio.wait_for(temporal.client(), timeout=_SETTLE_TIMEOUT.total_seconds())
        response = await poll_update(client, workflow_id, update_id, accepted_only=True)
    except (RPCError, TimeoutError, OSError, RuntimeError):
        response = None
    if response is not None:
        if response.outcome.HasField("failure"):
            raise failure_refusal(response.outcome.failure)
        if response.stage >= UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED:
            return accepted
    # Not seen accepted (still waiting, unknown to this run, or Temporal out of reach): the step's own
    # record is the last word — a run that continued as new no longer knows the Update's id.
    completed = (
        await session.exec(select(CaseStepRequest.completed_at).where(CaseStepRequest.update_id == update_id))
    ).first()
    if completed is not None:
        return accepted
    raise StepError(503, "not_taken", NOT_TAKEN)


async def system_update(
    temporal: TemporalConnection, workflow_id: str, update: Any, wait_seconds: float
) -> CaseSnapshot:
    """An Update the system itself sends (no person, no request row), with the same error mapping as steps."""
    try:
        client = await asyncio.wait_for(temporal.client(), timeout=wait_seconds)
        handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id)
        snapshot: CaseSnapshot = await asyncio.wait_for(handle.execute_update(update), timeout=wait_seconds)
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise StepError(409, "case_not_running", "工单流程不存在或已结束") from None
        raise StepError(503, "temporal_unavailable", NOT_TAKEN) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, OSError, RuntimeError):
        raise StepError(503, "temporal_unavailable", NOT_TAKEN) from None
    return snapshot


def failure_refusal(failure: Any) -> StepError:
    """A refusal read from a polled Update's outcome (a Failure message), mapped as `refusal` maps it."""
    kind = failure.application_failure_info.type
    if kind == ErrorType.EXPIRED:
        return StepError(503, "not_taken", NOT_TAKEN, ErrorType.EXPIRED)
    status, code = _REFUSALS.get(kind, (409, "rejected"))
    return StepError(status, code, failure.message, kind)


def refusal(exc: WorkflowUpdateFailedError) -> StepError:
    """The workflow's reason for refusing a step, as an HTTP status and code."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        if cause.type == ErrorType.EXPIRED:
            return StepError(503, "not_taken", NOT_TAKEN, ErrorType.EXPIRED)
        status, code = _REFUSALS.get(cause.type or "", (409, "rejected"))
        return StepError(status, code, cause.message, cause.type or "")
    return StepError(409, "rejected", "工单流程拒绝了此操作，请刷新后重试")


async def poll_update(client: Client, workflow_id: str, update_id: str, accepted_only: bool) -> Any:
    """Where an Update stands, waiting at most a couple of seconds for it to reach the stage asked for."""
    stage = (
        UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED
        if accepted_only
        else UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED
    )
    return await client.workflow_service.poll_workflow_execution_update(
        PollWorkflowExecutionUpdateRequest(
            namespace=client.namespace,
            update_ref=UpdateRef(workflow_execution=WorkflowExecution(workflow_id=workflow_id), update_id=update_id),
            identity=client.identity,
            wait_policy=WaitPolicy(lifecycle_stage=stage),
        ),
        retry=False,
        timeout=_ACCEPTANCE_SETTLE if accepted_only else _SETTLE_TIMEOUT,
    )
