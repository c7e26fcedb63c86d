"""The unit's inbox and the case page (承办单位), with the step forms the case's stage and the person allow.

Reads call the API's own read functions (api/cases/reads.py) and steps go through `run_step`
(api/cases/actions.py), so scope, relations and the workflow's validators decide here exactly as
they do for the API; this module draws the answers and says refusals in Chinese.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import col, select

from api.cases.actions import run_step
from api.cases.reads import get_case, list_cases
from api.cases.scope import check_relation, relations, visible_case_row
from api.cases.steps import StepAccepted, StepError
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.params import MAX_OFFSET, IdPath, OptionalIdQuery
from api.rater_privacy import RevealRequest, reveal_rater
from models.calendar import load_calendar
from models.case.records import CaseDetail
from models.case.steps import STEPS_BY_NAME, CaseStep, Relation, steps_open_to
from models.case.vocabulary import STAGE_LABELS_ZH, Stage
from models.organisation import Unit, unit_subtree_ids
from models.ratings import SERVICE_STAGE_LABELS_ZH
from models.users import User
from pages import words
from pages.render import render, time_left_zh
from pages.routing import PageRoute, error_page
from pages.session import FormUser, PageUser
from pages.step_forms import FormField, field_errors, form_fields, read_form

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 20
_STEP_PATH = "/cases/{case_id}/steps/{step}"


@router.get("/cases", response_class=HTMLResponse)
async def inbox(
    request: Request,
    session: SessionDep,
    user: PageUser,
    status: Literal["open", "finished", "all"] = "open",
    stage: Stage | Literal[""] = "",  # "" is the filter's 全部阶段
    overdue: Annotated[Literal["", "yes"], Query()] = "",
    unit_id: OptionalIdQuery = None,
    page: Annotated[int, Query(ge=1, le=MAX_OFFSET // PAGE_SIZE)] = 1,
) -> HTMLResponse:
    """The cases the person may see, the nearest deadline first; overdue ones marked."""
    found = await list_cases(
        session,
        user,
        status=None if status == "all" else status,
        stage=stage or None,
        unit_id=unit_id,
        overdue=True if overdue == "yes" else None,
        escalation_rung=None,
        due_before=None,
        round=None,
        sort="due" if status == "open" else "newest",
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    calendar = await load_calendar(session)
    rows = [
        {
            "case": item,
            "time_left": time_left_zh(item.next_due_at, calendar),
            "stage_label": STAGE_LABELS_ZH[item.stage],
        }
        for item in found.items
    ]
    pages = max(1, -(-found.total // PAGE_SIZE))
    filters = {"status": status, "stage": stage, "overdue": overdue, "unit_id": unit_id or ""}
    return render(
        request,
        "staff/inbox.html.j2",
        title="已办结工单" if status == "finished" else "待办工单",
        rows=rows,
        total=found.total,
        page=page,
        pages=pages,
        filters=filters,
        stages=[(s.value, label) for s, label in STAGE_LABELS_ZH.items()],
        query_without_page=_query(filters),
    )


def _query(filters: dict[str, Any]) -> str:
    return "&".join(f"{key}={value}" for key, value in filters.items() if value not in ("", None))


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, case_id: IdPath, session: SessionDep, user: PageUser) -> HTMLResponse:
    """One case: rating, deadlines with their explanation, timeline, and the forms open to this person now."""
    done = request.query_params.get("done", "")
    step = STEPS_BY_NAME.get(done)
    flash = ""
    if step is not None:
        flash = f"已办理：{step.label}"
    elif done == "pending":
        flash = "操作已提交，正在办理，请稍后刷新查看结果。"
    return await _case_view(request, session, user, case_id, flash=flash)


async def _case_view(
    request: Request,
    session: SessionDep,
    user: User,
    case_id: int,
    *,
    status_code: int = 200,
    flash: str = "",
    flash_kind: str = "ok",
    failed_step: str = "",
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    form_error: str = "",
    contact: Any = None,
) -> HTMLResponse:
    detail: CaseDetail = await get_case(case_id, session, user)
    case = (await visible_case_row(session, user, case_id))[0]
    standing = await relations(session, user, case)
    calendar = await load_calendar(session)
    units = await _reassign_targets(session, user, case.unit_id) if Relation.SUPERVISES in standing else []
    forms = [
        _step_form(
            step, units, values if step.name == failed_step else None, errors if step.name == failed_step else None
        )
        for step in steps_open_to(standing, detail.stage)
    ]
    actors = await _actor_names(session, [event.actor for event in detail.timeline])
    return render(
        request,
        "staff/case.html.j2",
        status_code=status_code,
        title=f"工单 {detail.id}",
        case=detail,
        stage_label=STAGE_LABELS_ZH[detail.stage],
        outcome_label=words.label(words.OUTCOME_LABELS_ZH, detail.outcome) if detail.outcome else "",
        time_left=lambda due: time_left_zh(due, calendar),
        deadline_state=lambda state: words.label(words.DEADLINE_STATE_LABELS_ZH, state),
        action_label=lambda action: words.label(words.ACTION_LABELS_ZH, action),
        notice_label=lambda kind: words.label(words.NOTICE_KIND_LABELS_ZH, kind),
        notice_status=lambda status: words.label(words.NOTICE_STATUS_LABELS_ZH, status),
        channel_label=lambda channel: words.label(words.CHANNEL_LABELS_ZH, channel),
        stage_word=lambda stage: SERVICE_STAGE_LABELS_ZH.get(stage, stage),
        actor_name=lambda actor: actors.get(actor, "系统" if actor == "system" else actor),
        forms=forms,
        failed_step=failed_step,
        form_error=form_error,
        may_reveal=Relation.HANDLES in standing and any((detail.rater.name, detail.rater.phone, detail.rater.email)),
        contact=contact,
        flash=flash,
        flash_kind=flash_kind,
    )


async def _reassign_targets(session: SessionDep, user: User, current_unit: int) -> list[tuple[int, str]]:
    """The units a supervisor may hand the case to: their own subtree, less the unit that has it."""
    if user.unit_id is None:
        return []
    ids = await unit_subtree_ids(session, user.unit_id)
    rows = (await session.exec(select(Unit).where(col(Unit.id).in_(ids)).order_by(col(Unit.id)))).all()
    return [(unit.id, unit.name) for unit in rows if unit.id is not None and unit.id != current_unit]


async def _actor_names(session: SessionDep, actors: list[str]) -> dict[str, str]:
    ids = {int(a.split(":", 1)[1]) for a in actors if a.startswith("user:") and a.split(":", 1)[1].isdigit()}
    if not ids:
        return {}
    rows = (await session.exec(select(User.id, User.display_name).where(col(User.id).in_(ids)))).all()
    return {f"user:{uid}": name for uid, name in rows}


def _step_form(
    step: CaseStep, units: list[tuple[int, str]], values: dict[str, Any] | None, errors: dict[str, str] | None
) -> dict[str, Any]:
    fields: list[FormField] = form_fields(step.fields, units)
    for spec in fields:
        if values is not None:
            spec.value = values.get(spec.name, "")
        if errors is not None:
            spec.error = errors.get(spec.name, "")
    return {
        "step": step,
        "fields": fields,
        "confirm": f"确认{step.label}？提交后不可撤销。" if step.confirm else "",
        "request_key": uuid.uuid4().hex,
        "open": values is not None,
    }


@router.post(_STEP_PATH, response_class=HTMLResponse)
async def take_step_from_page(
    request: Request,
    case_id: IdPath,
    step: str,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    user: FormUser,
) -> Response:
    """Take a step from its form: errors next to the fields, a refusal explained with the case's current stage."""
    chosen = STEPS_BY_NAME.get(step)
    if chosen is None:
        return error_page(request, 404, "没有这项办理操作。")
    # Who may take it is settled before the fields are read, as for the API: no field errors for outsiders.
    await check_relation(session, user, (await visible_case_row(session, user, case_id))[0], chosen)
    form = await request.form()
    values = {
        key: value for key, value in form.items() if isinstance(value, str) and key not in ("csrf", "request_key")
    }
    try:
        body = chosen.fields.model_validate(read_form(chosen.fields, form))
    except ValidationError as exc:
        by_field, general = field_errors(exc)
        return await _case_view(
            request, session, user, case_id, status_code=422, failed_step=chosen.name, values=values,
            errors=by_field, form_error="；".join(general) or "请按提示修改后再提交。",
        )  # fmt: skip
    key = form.get("request_key")
    idempotency_key = f"page:{key}" if isinstance(key, str) and key.isalnum() and len(key) <= 64 else None
    try:
        outcome = await run_step(
            chosen, case_id, body, request=request, session=session, settings=settings, temporal=temporal,
            user=user, idempotency_key=idempotency_key,
        )  # fmt: skip
    except StepError as exc:
        return await _refused(request, session, user, case_id, chosen, exc, values)
    except HTTPException as exc:
        if exc.status_code == 404:
            raise
        message = exc.detail.get("message", "") if isinstance(exc.detail, dict) else str(exc.detail)
        field = exc.detail.get("field") if isinstance(exc.detail, dict) else None
        return await _case_view(
            request, session, user, case_id, status_code=exc.status_code, failed_step=chosen.name, values=values,
            errors={field: message} if field else {}, form_error=message,
        )  # fmt: skip
    done = "pending" if isinstance(outcome, StepAccepted) else chosen.name
    return RedirectResponse(f"/cases/{case_id}?done={done}", status_code=303)


async def _refused(
    request: Request,
    session: SessionDep,
    user: User,
    case_id: int,
    step: CaseStep,
    exc: StepError,
    values: dict[str, Any],
) -> HTMLResponse:
    """A step the workflow refused or did not take: why, and where the case stands now."""
    if exc.status == 503:
        message = f"{exc.message}（{step.label}未办理，您填写的内容已保留）"
        page = await _case_view(
            request, session, user, case_id, status_code=503, failed_step=step.name, values=values,
            flash=message, flash_kind="error",
        )  # fmt: skip
        page.headers["Retry-After"] = str(exc.retry_after or 5)
        return page
    case = (await visible_case_row(session, user, case_id))[0]
    stage = STAGE_LABELS_ZH[case.stage]
    message = f"「{step.label}」未办理：{exc.message}。工单当前阶段：{stage}。"
    return await _case_view(request, session, user, case_id, status_code=exc.status, flash=message, flash_kind="error")


@router.post("/cases/{case_id}/rater-contact", response_class=HTMLResponse)
async def show_rater_contact(request: Request, case_id: IdPath, session: SessionDep, user: FormUser) -> HTMLResponse:
    """The rater's full contact for the handling unit, with the reason audited (the API's own check and record)."""
    form = await request.form()
    reason = form.get("reason")
    try:
        body = RevealRequest(reason=reason.strip() if isinstance(reason, str) else "")
    except ValidationError:
        return await _case_view(
            request, session, user, case_id, status_code=422, flash="请填写查看联系方式的理由（至少 4 个字）。",
            flash_kind="error",
        )  # fmt: skip
    contact = await reveal_rater(case_id, body, request, session, user)
    return await _case_view(request, session, user, case_id, contact=contact, flash="已记录本次查看。")
