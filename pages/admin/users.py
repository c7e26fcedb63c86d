"""Users (用户): the accounts, a new account, and what PATCH /api/v1/admin/users/{id} allows on one.

Every change goes through the API's own route functions (api/admin.py), so the rules (a unit for
staff, supervisors and reviewers; no admin locking themselves out) and the audit records are the API's.
A password the page sets is generated here and shown once, on the answer to the post that set it.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.admin import UserCreate, UserRead, UserUpdate, create_user, list_units, list_users, update_user
from api.deps import SessionDep
from api.errors import api_error
from api.params import IdPath
from models.db import utcnow
from models.roles import Role
from models.users import User
from pages.admin.common import AdminForm, AdminPage, field_errors, flash_of, form_text, refused
from pages.render import ROLE_LABELS_ZH, render
from pages.routing import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_NEW_FIELDS = ("username", "display_name", "email", "role", "unit_id")
_EDIT_FIELDS = ("display_name", "email", "role", "unit_id")
_DONE = {
    "updated": "用户资料已保存。",
    "deactivated": "账号已停用：该用户不能再登录，已登录的会话立即失效。",
    "activated": "账号已启用。",
    "unlocked": "登录锁定已解除。",
}
# No 0/O, 1/l/I: the password is read off a screen and typed or dictated.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_password() -> str:
    """An initial or reset password: 16 characters, about 93 bits."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def _body(values: dict[str, str]) -> dict[str, Any]:
    # An empty select or input means "none" for the optional fields.
    return {k: (v or None) if k in ("email", "unit_id") else v for k, v in values.items()}


async def _units(session: SessionDep, admin: User) -> list[tuple[int, str]]:
    return [(u.id, f"{u.name}（{u.code}）") for u in await list_units(session, admin)]


def _roles() -> list[tuple[str, str]]:
    return [(role.value, ROLE_LABELS_ZH[role]) for role in Role]


async def _list_page(
    request: Request,
    session: SessionDep,
    admin: User,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    units = await _units(session, admin)
    names = dict(units)
    now = utcnow()
    rows = [
        {
            "account": account,
            "role": ROLE_LABELS_ZH[account.role],
            "unit": names.get(account.unit_id, "") if account.unit_id else "",
            "locked": account.locked_until is not None and account.locked_until > now,
        }
        for account in await list_users(session, admin)
    ]
    return render(
        request,
        "admin/users.html.j2",
        status_code=status_code,
        title="用户",
        rows=rows,
        units=units,
        roles=_roles(),
        values=values or dict.fromkeys(_NEW_FIELDS, ""),
        errors=errors or {},
    )


async def _account(session: SessionDep, user_id: int) -> User:
    account = await session.get(User, user_id)
    if account is None:
        raise api_error(404, "not_found", f"用户 {user_id} 不存在")
    return account


async def _user_page(
    request: Request,
    session: SessionDep,
    admin: User,
    user_id: int,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    account = await _account(session, user_id)
    units = await _units(session, admin)
    current = {
        "display_name": account.display_name,
        "email": account.email or "",
        "role": account.role.value,
        "unit_id": str(account.unit_id or ""),
    }
    return render(
        request,
        "admin/user.html.j2",
        status_code=status_code,
        title=f"用户 {account.display_name}",
        account=account,
        role=ROLE_LABELS_ZH[account.role],
        unit=dict(units).get(account.unit_id, "") if account.unit_id else "",
        locked=account.locked_until is not None and account.locked_until > utcnow(),
        units=units,
        roles=_roles(),
        values=values or current,
        errors=errors or {},
        flash=flash_of(request, _DONE),
    )


def _password_page(request: Request, account: UserRead, password: str, created: bool) -> HTMLResponse:
    """The only place the password ever appears; the page is not cached (render sets no-store)."""
    title = "用户已创建" if created else "密码已重置"
    return render(request, "admin/user_password.html.j2", title=title, account=account, password=password)


@router.get("/admin/users", response_class=HTMLResponse)
async def users_page(request: Request, session: SessionDep, admin: AdminPage) -> HTMLResponse:
    """Every account with its role, unit and state, and the form for a new one."""
    return await _list_page(request, session, admin)


@router.post("/admin/users", response_class=HTMLResponse)
async def create_user_from_page(request: Request, session: SessionDep, admin: AdminForm) -> Response:
    """Create an account with a generated password, shown once on the answer."""
    form = await request.form()
    values = {name: form_text(form, name) for name in _NEW_FIELDS}
    password = new_password()
    try:
        body = UserCreate.model_validate({**_body(values), "password": password})
        created = await create_user(body, request, session, admin)
    except ValidationError as exc:
        return await _list_page(request, session, admin, status_code=422, values=values, errors=field_errors(exc))
    except HTTPException as exc:
        field, message = await refused(session, admin, exc)
        return await _list_page(request, session, admin, status_code=exc.status_code, values=values, errors={field: message})  # fmt: skip
    return _password_page(request, created, password, created=True)


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
async def user_page(request: Request, user_id: IdPath, session: SessionDep, admin: AdminPage) -> HTMLResponse:
    """One account: its details, and the changes the API allows."""
    return await _user_page(request, session, admin, user_id)


async def _update(
    request: Request, session: SessionDep, admin: User, user_id: int, changes: dict[str, Any], done: str
) -> Response:
    """PATCH through the API's function; a refusal is shown on the user's page, success redirects."""
    values = {name: str(changes.get(name) or "") for name in _EDIT_FIELDS} if "role" in changes else None
    try:
        await update_user(user_id, UserUpdate.model_validate(changes), request, session, admin)
    except ValidationError as exc:
        errors = field_errors(exc)
        return await _user_page(request, session, admin, user_id, status_code=422, values=values, errors=errors)
    except HTTPException as exc:
        field, message = await refused(session, admin, exc)
        errors = {field if values is not None else "": message}
        return await _user_page(request, session, admin, user_id, status_code=exc.status_code, values=values, errors=errors)  # fmt: skip
    return RedirectResponse(f"/admin/users/{user_id}?done={done}", status_code=303)


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
async def edit_user_from_page(request: Request, user_id: IdPath, session: SessionDep, admin: AdminForm) -> Response:
    """Change the display name, email, role and unit."""
    form = await request.form()
    return await _update(request, session, admin, user_id, _body({n: form_text(form, n) for n in _EDIT_FIELDS}), "updated")  # fmt: skip


@router.post("/admin/users/{user_id}/active", response_class=HTMLResponse)
async def set_user_active(request: Request, user_id: IdPath, session: SessionDep, admin: AdminForm) -> Response:
    """Deactivate (active=false) or reactivate (active=true) an account."""
    active = form_text(await request.form(), "active") == "true"
    return await _update(request, session, admin, user_id, {"active": active}, "activated" if active else "deactivated")


@router.post("/admin/users/{user_id}/unlock", response_class=HTMLResponse)
async def unlock_user(request: Request, user_id: IdPath, session: SessionDep, admin: AdminForm) -> Response:
    """Lift a lock set by too many wrong passwords."""
    return await _update(request, session, admin, user_id, {"unlock": True}, "unlocked")


@router.post("/admin/users/{user_id}/password", response_class=HTMLResponse)
async def reset_password(request: Request, user_id: IdPath, session: SessionDep, admin: AdminForm) -> Response:
    """Set a new generated password, shown once; every session of the account ends (docs/security.md)."""
    password = new_password()
    try:
        account = await update_user(user_id, UserUpdate(password=password), request, session, admin)
    except HTTPException as exc:
        _field, message = await refused(session, admin, exc)
        return await _user_page(request, session, admin, user_id, status_code=exc.status_code, errors={"": message})
    return _password_page(request, account, password, created=False)
