"""Case steps over HTTP: one route per row of the step table (models/case/steps.py).

`POST /api/v1/cases/{id}/<step>`: the API checks how the caller stands to the case (api/cases/scope.py),
then asks the workflow to take the step (api/cases/steps.py); the workflow's validator checks the
stage and the fields. 200 taken, 202 taken and finishing, 409 refused (stage, already taken),
403 not yours to take, 422 bad input, 503 not taken.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from api.cases.scope import check_may_take, visible_case_row
from api.cases.steps import StepAccepted, StepCall, StepError, take_step
from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep, client_address
from api.errors import ErrorBody
from api.params import IdempotencyKey, IdPath
from config import Settings
from models.case.steps import STEPS, CaseStep
from models.case.vocabulary import Actor, CaseSnapshot
from models.users import User
from runtime.temporal import TemporalConnection
from workflows.case import CaseWorkflow

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


async def run_step(
    step: CaseStep,
    case_id: int,
    body: BaseModel,
    *,
    request: Request,
    session: AsyncSession,
    settings: Settings,
    temporal: TemporalConnection,
    user: User,
    idempotency_key: str | None,
) -> CaseSnapshot | StepAccepted:
    """Take one step for a person, API and pages alike: scope, relation, then the workflow (raises StepError)."""
    case = (await visible_case_row(session, user, case_id))[0]
    await check_may_take(session, user, case, step, body)
    assert user.id is not None
    actor = Actor(user_id=user.id, role=user.role, unit_id=user.unit_id)
    call = StepCall(
        case=case,
        requester=f"user:{user.id}",
        action=step.name,
        update=getattr(CaseWorkflow, step.update),
        update_input=step.workflow_input(actor=actor, **body.model_dump()),
        fields=body.model_dump(mode="json"),
        idempotency_key=idempotency_key,
        client=client_address(request),
    )
    return await take_step(
        session, temporal, call, settings.case_action_wait_seconds, f"/api/v1/cases/{case_id}/requests/{{}}"
    )


def _endpoint(step: CaseStep) -> Callable[..., Awaitable[CaseSnapshot | JSONResponse]]:
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
        try:
            outcome = await run_step(
                step,
                case_id,
                body,
                request=request,
                session=session,
                settings=settings,
                temporal=temporal,
                user=user,
                idempotency_key=idempotency_key,
            )
        except StepError as exc:
            return step_error_response(exc)
        if isinstance(outcome, StepAccepted):
            return JSONResponse(status_code=202, content=outcome.model_dump())
        return outcome

    # FastAPI reads the body model from the annotation; each action has its own.
    endpoint.__annotations__["body"] = step.fields
    endpoint.__name__ = f"case_{step.name.replace('-', '_')}"
    endpoint.__doc__ = step.label
    return endpoint


def step_error_response(exc: StepError) -> JSONResponse:
    """A refused or untaken step as the JSON error body, with Retry-After when it was not taken."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return JSONResponse(
        status_code=exc.status, content={"detail": {"code": exc.code, "message": exc.message}}, headers=headers
    )


_STEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": StepAccepted, "description": "Taken (durably accepted) and still finishing: see check_url"},
    403: {"model": ErrorBody, "description": "Not the caller's to take (another unit, not the supervising office)"},
    409: {"model": ErrorBody, "description": "Refused: the case is not in a stage for this step, or it was taken"},
    503: {"model": ErrorBody, "description": "Not taken (the case service is unavailable): retry after Retry-After"},
}


for _step in STEPS:
    router.add_api_route(
        f"/{{case_id}}/{_step.name}",
        _endpoint(_step),
        methods=["POST"],
        response_model=CaseSnapshot,
        responses=_STEP_RESPONSES,
        summary=_step.label,
        name=f"case_{_step.name}",
    )
