"""根源整改 pages: the list (and, for supervisors, opening one by hand), a rectification's page with its step forms.

Reads and steps call the API's own functions (api/root_cause.py, api/root_cause_open.py,
api/root_cause_steps.py), so who may see and do what is decided there; this module draws the answers
and says refusals in Chinese. Opening one from a concentrated problem posts the same form from
/concentrated (pages/concentrated.py).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from api.cases.steps import StepAccepted, StepError
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.params import IdPath
from api.root_cause import get_rectification, list_rectifications, visible_rectification
from api.root_cause_open import open_root_cause
from api.root_cause_steps import ROOT_CAUSE_STEPS, RootCauseStep, may_take, run_root_cause_step
from api.root_cause_steps import STEPS_BY_NAME as ROOT_CAUSE_STEPS_BY_NAME
from models.deadlines import CHINA_TZ
from models.roles import Role
from models.root_cause import RootCauseCreate
from models.root_cause_io import OPEN_ROOT_CAUSE_STAGES, ROOT_CAUSE_STAGE_LABELS_ZH, RootCauseStage
from models.users import User
from pages.admin.common import field_errors, flash_of, form_text
from pages.render import render
from pages.routing import PageRoute, error_page
from pages.session import FormUser, PageUser
from pages.supervision import PAGE_SIZE, PageNumber, query_string, unit_choices

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# Which stage each step's form is shown in (the workflow decides; this only avoids offering what it would refuse).
_STEP_STAGES: dict[str, frozenset[RootCauseStage]] = {
    "progress": frozenset({RootCauseStage.RECTIFYING}),
    "result": frozenset({RootCauseStage.RECTIFYING}),
    "acceptance": frozenset({RootCauseStage.RESULT_SUBMITTED}),
    "return": frozenset({RootCauseStage.RESULT_SUBMITTED}),
    "withdrawal": OPEN_ROOT_CAUSE_STAGES,
}
_DONE = {
    "opened": "已发起根源整改，已通知承办单位。",
    "pending": "操作已提交，正在办理。",
    **{s.name: f"已办理：{s.label}" for s in ROOT_CAUSE_STEPS},
}
_ACTION_LABELS = {
    "opened": "发起根源整改",
    "progress": "报告整改进展",
    "result_submitted": "报告整改结果",
    "returned": "退回整改",
    "accepted": "验收通过，结果已反馈评价人",
    "withdrawn": "撤销",
    "reminded": "期限提醒",
    "overdue": "已超期（督办第 1 级）",
    "escalated": "督办升级",
}


def case_ids_of(text: str) -> list[int] | str:
    """Case numbers typed one way or another ("3, 5 7" or one a line); the text itself if it is not numbers."""
    parts = [p for p in re.split(r"[\s,，、;；#]+", text) if p]
    return [int(p) for p in parts] if parts and all(p.isdigit() and len(p) <= 10 for p in parts) else text


def create_values(posted: FormData) -> dict[str, Any]:
    """The opening form as RootCauseCreate reads it."""
    days = form_text(posted, "working_days")
    return {
        "unit_id": form_text(posted, "unit_id"),
        "title": form_text(posted, "title"),
        "problem": form_text(posted, "problem"),
        "case_ids": case_ids_of(form_text(posted, "case_ids")),
        "working_days": days or None,
        "concentration": form_text(posted, "concentration"),
    }


async def open_from_form(
    request: Request, session: SessionDep, settings: SettingsDep, temporal: TemporalDep, user: User
) -> tuple[int | None, dict[str, Any]]:
    """Open a rectification from a posted form: (its id, {}) or (None, the form with its errors and message)."""
    if user.role != Role.SUPERVISOR:  # refused before the form is read: whom the API refuses, a page refuses
        raise HTTPException(403, detail={"code": "not_supervisor", "message": "只有督办人员可以发起根源整改"})
    posted = await request.form()
    values = create_values(posted)
    shown = {**values, "case_ids": form_text(posted, "case_ids"), "working_days": form_text(posted, "working_days")}
    try:
        body = RootCauseCreate.model_validate(values)
        row = await open_root_cause(
            session, settings, temporal, user, body, request.client.host if request.client else ""
        )
    except ValidationError as exc:
        return None, {**shown, "errors": field_errors(exc), "message": "未提交：请按提示修改。", "status": 422}
    except HTTPException as exc:
        if exc.status_code not in (409, 422, 503):
            raise
        await session.rollback()
        await session.refresh(user)
        detail: dict[str, Any] = exc.detail if isinstance(exc.detail, dict) else {}
        errors = {str(detail.get("field")): str(detail.get("message"))} if detail.get("field") else {}
        return None, {**shown, "errors": errors, "message": str(detail.get("message", "")), "status": exc.status_code}
    return row.id, {}


@router.get("/root-cause", response_class=HTMLResponse)
async def root_cause_list(
    request: Request,
    session: SessionDep,
    user: PageUser,
    stage: RootCauseStage | Literal[""] = "",
    page: PageNumber = 1,
) -> HTMLResponse:
    """根源整改: the rectifications of this person's units; supervisors open one by hand here."""
    return await _list_page(request, session, user, stage, page)


async def _list_page(
    request: Request, session: SessionDep, user: User, stage: RootCauseStage | Literal[""], page: int,
    form: dict[str, Any] | None = None,
) -> HTMLResponse:  # fmt: skip
    chosen = stage or None
    found = await list_rectifications(session, user, chosen, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    form = form or {}
    return render(
        request, "root_cause/list.html.j2", status_code=form.get("status", 200), title="根源整改", rows=found.items,
        total=found.total, page=page, pages=max(1, -(-found.total // PAGE_SIZE)), stage=chosen.value if chosen else "",
        query=query_string(stage=chosen.value if chosen else ""),
        stages=[(s.value, label) for s, label in ROOT_CAUSE_STAGE_LABELS_ZH.items()],
        may_open=user.role == Role.SUPERVISOR, units=await unit_choices(session, user) if user.role == Role.SUPERVISOR else [],
        form=form, flash=form.get("message") or flash_of(request, _DONE), flash_kind="error" if form else "ok",
    )  # fmt: skip


@router.post("/root-cause", response_class=HTMLResponse)
async def open_from_page(
    request: Request, session: SessionDep, settings: SettingsDep, temporal: TemporalDep, user: FormUser
) -> Response:
    """Open a rectification by hand (or from /concentrated); errors come back on the list, under the form."""
    rectification_id, form = await open_from_form(request, session, settings, temporal, user)
    if rectification_id is None:
        return await _list_page(request, session, user, "", 1, form)
    return RedirectResponse(f"/root-cause/{rectification_id}?done=opened", status_code=303)


@router.get("/root-cause/{rectification_id}", response_class=HTMLResponse)
async def root_cause_page(
    rectification_id: IdPath, request: Request, session: SessionDep, user: PageUser
) -> HTMLResponse:
    """One rectification: the problem, its cases, deadline, result and timeline, and the forms this person may post."""
    return await _detail(request, session, user, rectification_id)


async def _detail(
    request: Request, session: SessionDep, user: User, rectification_id: int, status_code: int = 200,
    form_error: str = "", form: dict[str, Any] | None = None,
) -> HTMLResponse:  # fmt: skip
    row = await visible_rectification(session, user, rectification_id)
    read = await get_rectification(rectification_id, session, user)
    steps = [s for s in ROOT_CAUSE_STEPS if row.stage in _STEP_STAGES[s.name] and await may_take(session, user, row, s)]
    return render(
        request, "root_cause/detail.html.j2", status_code=status_code, title=f"根源整改 #{rectification_id}", r=read,
        steps=steps, form=form or {}, form_error=form_error, flash=flash_of(request, _DONE),
        action_label=lambda action: _ACTION_LABELS.get(action, action),
    )  # fmt: skip


def _step_values(step: RootCauseStep, posted: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: form_text(posted, name) for name in step.fields.model_fields}
    if "measures" in values:
        values["measures"] = [line.strip() for line in values["measures"].splitlines() if line.strip()]
    if "due_at" in values:
        values["due_at"] = _china_moment(values["due_at"])
    return values


def _china_moment(text: str) -> datetime | str | None:
    """A datetime-local input, read as China time; the text itself if it is not one (the model says why)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)
    except ValueError:
        return text


async def _take(
    step: RootCauseStep, rectification_id: int, request: Request, session: SessionDep, settings: SettingsDep,
    temporal: TemporalDep, user: User,
) -> Response:  # fmt: skip
    row = await visible_rectification(session, user, rectification_id)
    if not await may_take(session, user, row, step):  # refused before the form is read, as the API refuses
        return error_page(request, 403, f"您不能{step.label}")
    posted = await request.form()
    values = _step_values(step, posted)
    try:
        body: BaseModel = step.fields.model_validate(values)
        outcome = await run_root_cause_step(
            step, rectification_id, body, session=session, settings=settings, temporal=temporal, user=user,
            idempotency_key=form_text(posted, "request_key") or None,
        )  # fmt: skip
    except ValidationError as exc:
        form = {"step": step.name, **{k: form_text(posted, k) for k in values}, "errors": field_errors(exc)}
        return await _detail(request, session, user, rectification_id, 422, "未提交：请按提示修改。", form)
    except StepError as exc:
        if exc.status in (403, 404):
            return error_page(request, exc.status, exc.message)
        page = await _detail(
            request, session, user, rectification_id, exc.status, f"「{step.label}」未办理：{exc.message}"
        )
        if exc.retry_after:
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    done = "pending" if isinstance(outcome, StepAccepted) else step.name
    return RedirectResponse(f"/root-cause/{rectification_id}?done={done}", status_code=303)


def _step_route(step: RootCauseStep) -> Any:
    async def post_step(
        rectification_id: IdPath, request: Request, session: SessionDep, settings: SettingsDep,
        temporal: TemporalDep, user: FormUser,
    ) -> Response:  # fmt: skip
        return await _take(step, rectification_id, request, session, settings, temporal, user)

    post_step.__name__ = f"root_cause_page_{step.name}"
    post_step.__doc__ = step.label
    return post_step


for _step in ROOT_CAUSE_STEPS_BY_NAME.values():
    router.add_api_route(
        f"/root-cause/{{rectification_id}}/{_step.name}",
        _step_route(_step),
        methods=["POST"],
        response_class=HTMLResponse,
    )
