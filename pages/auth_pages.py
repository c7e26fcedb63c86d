"""Signing in and out of the pages, and "/" (each role's own start page)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import authenticate
from api.deps import SessionDep, SettingsDep, audit_user_action, client_address, user_from_token
from api.origin import same_origin
from api.security import create_access_token
from pages.render import home_of, render
from pages.routing import PageRoute, error_page
from pages.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    FormUser,
    clear_session_cookie,
    new_login_csrf,
    set_session_cookie,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _safe_next(next_url: str) -> str:
    """Only a path on this site: an open redirect would make the sign-in page a phishing tool."""
    if next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url and "\n" not in next_url:
        return next_url
    return ""


def _login_page(
    request: Request, settings: SettingsDep, status_code: int = 200, *, next_url: str = "", **context: object
) -> HTMLResponse:
    token = new_login_csrf()
    page = render(request, "login.html.j2", status_code, title="登录", login_csrf=token, next_url=next_url, **context)
    page.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=settings.cookies_secure, path="/login"
    )
    return page


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, settings: SettingsDep, next: str = "", expired: bool = False) -> HTMLResponse:  # noqa: A002 - the query parameter's name
    """The sign-in form; `expired` says the session ran out."""
    return _login_page(request, settings, next_url=_safe_next(next), expired=expired, username="", error="")


@router.post("/login", response_class=HTMLResponse)
async def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "",  # noqa: A002 - the form field's name
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Check the password the way the API does (lockout included), then start a cookie session."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    next_url = _safe_next(next)
    if not same_origin(request, settings) or not csrf or not hmac.compare_digest(csrf.encode(), cookie.encode()):
        return _login_page(
            request, settings, 403, next_url=next_url, username=username, expired=False,
            error="页面已过期，请重新输入用户名和密码。",
        )  # fmt: skip
    try:
        user = await authenticate(session, settings, username, password, client_address(request))
    except HTTPException as exc:
        message = exc.detail.get("message", "登录失败") if isinstance(exc.detail, dict) else "登录失败"
        return _login_page(
            request, settings, exc.status_code, next_url=next_url, username=username, expired=False, error=message
        )
    assert user.id is not None
    token, _expires = create_access_token(
        user.id, settings.signing_key(), settings.page_session_minutes, password_hash=user.password_hash
    )
    audit_user_action(session, request, user, "auth.page_login", "user", user.id, unit_id=user.unit_id)
    await session.commit()
    response = RedirectResponse(next_url or home_of(user.role), status_code=303)
    set_session_cookie(response, settings, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep, settings: SettingsDep, user: FormUser) -> Response:
    """End the page session (the cookie is cleared; the token dies with its expiry)."""
    audit_user_action(session, request, user, "auth.page_logout", "user", user.id, unit_id=user.unit_id)
    await session.commit()
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Signed in: the role's start page. Otherwise the sign-in page."""
    user = await user_from_token(request.cookies.get(SESSION_COOKIE), session, settings)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(home_of(user.role), status_code=303)


__all__ = ["router", "error_page"]
