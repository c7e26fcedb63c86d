"""差评集中: the supervisors' page of concentrated problems, each with a form to open a root-cause rectification.

The report is the API's (api/concentrated.py: the same scope and thresholds); the form posts to
/root-cause (pages/root_cause.py), which opens the rectification through the API's own function.
A refused form comes back here, open, with its message.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.concentrated import concentration_report
from api.deps import SessionDep, SettingsDep, TemporalDep
from models.concentration import KIND_LABELS_ZH, ConcentrationKind
from models.roles import Role
from models.users import User
from pages.render import render
from pages.root_cause import open_from_form
from pages.routing import PageRoute
from pages.session import FormUser
from pages.supervision import SupervisorUser, unit_choices

router = APIRouter(route_class=PageRoute, include_in_schema=False)


async def _page(
    request: Request, session: SessionDep, user: User, kind: ConcentrationKind | Literal[""],
    form: dict[str, Any] | None = None,
) -> HTMLResponse:  # fmt: skip
    report = await concentration_report(session, user, kind or None)
    form = form or {}
    return render(
        request, "root_cause/concentrated.html.j2", status_code=form.get("status", 200), title="差评集中事项",
        report=report, kind=kind, kinds=[(k.value, label) for k, label in KIND_LABELS_ZH.items()],
        units=await unit_choices(session, user), form=form, flash=form.get("message", ""),
        flash_kind="error" if form else "ok",
    )  # fmt: skip


@router.get("/concentrated", response_class=HTMLResponse)
async def concentrated_page(
    request: Request, session: SessionDep, user: SupervisorUser, kind: ConcentrationKind | Literal[""] = ""
) -> HTMLResponse:
    """差评集中事项: the items, units and staff whose bad reviews cluster, with their common complaints."""
    return await _page(request, session, user, kind)


@router.post("/concentrated", response_class=HTMLResponse)
async def open_from_concentrated(
    request: Request, session: SessionDep, settings: SettingsDep, temporal: TemporalDep, user: FormUser
) -> Response:
    """发起根源整改 from a problem's card; errors come back on this page, under that card's form."""
    if user.role != Role.SUPERVISOR:
        raise HTTPException(403, detail={"code": "wrong_role", "message": "此页面仅供督办人员使用。"})
    rectification_id, form = await open_from_form(request, session, settings, temporal, user)
    if rectification_id is None:
        return await _page(request, session, user, "", form)
    return RedirectResponse(f"/root-cause/{rectification_id}?done=opened", status_code=303)
