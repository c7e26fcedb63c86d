"""Business-system keys (接入密钥): the list, a new key shown once, and revoking one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.admin import ApiKeyCreate, create_api_key, list_api_keys, revoke_api_key
from api.deps import SessionDep
from api.params import IdPath
from models.users import User
from pages.admin.common import AdminForm, AdminPage, field_errors, flash_of, form_text
from pages.render import render
from pages.routing import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_FIELDS = ("name", "source_system")
_DONE = {"revoked": "密钥已作废，使用它的请求立即被拒绝。"}


async def _page(
    request: Request,
    session: SessionDep,
    admin: User,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "admin/api_keys.html.j2",
        status_code=status_code,
        title="接入密钥",
        keys=list(reversed(await list_api_keys(session, admin))),
        values=values or dict.fromkeys(_FIELDS, ""),
        errors=errors or {},
        flash=flash_of(request, _DONE),
    )


@router.get("/admin/api-keys", response_class=HTMLResponse)
async def api_keys_page(request: Request, session: SessionDep, admin: AdminPage) -> HTMLResponse:
    """Every key, newest first (name, system, prefix, dates; never the key), and the form for a new one."""
    return await _page(request, session, admin)


@router.post("/admin/api-keys", response_class=HTMLResponse)
async def create_api_key_from_page(request: Request, session: SessionDep, admin: AdminForm) -> Response:
    """Issue a key; the answer is the only time it is shown (only its hash is stored)."""
    form = await request.form()
    values = {name: form_text(form, name) for name in _FIELDS}
    try:
        body = ApiKeyCreate.model_validate(values)
    except ValidationError as exc:
        return await _page(request, session, admin, status_code=422, values=values, errors=field_errors(exc))
    created = await create_api_key(body, request, session, admin)
    return render(request, "admin/api_key_created.html.j2", title="接入密钥已创建", created=created)


@router.post("/admin/api-keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_api_key_from_page(request: Request, key_id: IdPath, session: SessionDep, admin: AdminForm) -> Response:
    """Revoke a key (the form asks for confirmation first)."""
    await revoke_api_key(key_id, request, session, admin)
    return RedirectResponse("/admin/api-keys?done=revoked", status_code=303)
