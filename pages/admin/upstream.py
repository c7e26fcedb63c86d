"""Upstream reporting (数据上报): how many pushes are where, the dead letters with their reasons, and retrying one."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, SettingsDep
from api.params import IdPath
from api.upstream import list_dead_letters, requeue
from models.upstream import PUSH_KIND_LABELS_ZH, PUSH_STATUS_LABELS_ZH
from models.users import User
from pages.admin.common import AdminForm, AdminPage, flash_of, refused
from pages.render import render
from pages.routing import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_DONE = {"retried": "已重新排队上报，几秒内由后台发送；结果见本页。"}


async def _page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    admin: User,
    *,
    status_code: int = 200,
    error: str = "",
) -> HTMLResponse:
    letters = await list_dead_letters(session, settings, admin, limit=200, offset=0)
    return render(
        request,
        "admin/upstream.html.j2",
        status_code=status_code,
        title="数据上报",
        letters=letters,
        status_labels=PUSH_STATUS_LABELS_ZH,
        kind_labels=PUSH_KIND_LABELS_ZH,
        error=error,
        flash=flash_of(request, _DONE),
    )


@router.get("/admin/upstream", response_class=HTMLResponse)
async def upstream_page(request: Request, session: SessionDep, settings: SettingsDep, admin: AdminPage) -> HTMLResponse:
    """Counts by status and every dead letter (the latest 200) with its reason and a retry button."""
    return await _page(request, session, settings, admin)


@router.post("/admin/upstream/pushes/{push_id}/retry", response_class=HTMLResponse)
async def retry_from_page(
    request: Request, push_id: IdPath, session: SessionDep, settings: SettingsDep, admin: AdminForm
) -> Response:
    """Send one dead letter again (the API's own retry: the same checks, the same audit record)."""
    try:
        await requeue(session, request, admin, push_id, settings.upstream_enabled)
    except HTTPException as exc:
        _field, message = await refused(session, admin, exc)
        return await _page(request, session, settings, admin, status_code=exc.status_code, error=message)
    return RedirectResponse("/admin/upstream?done=retried", status_code=303)
