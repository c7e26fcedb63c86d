"""Signing in to the pages: a cookie session, its CSRF token, and the signed-in user.

The session cookie carries the same signed, expiring, credential-bound token as an API bearer
token (api/security.py), so a password change or a deactivated account ends page sessions too, and
the user behind a page is found by the same function as behind the API (api/deps.py). The cookie is
HttpOnly and SameSite=Lax (a link in an email still opens the case page signed in), Secure outside
development.

Every form carries a CSRF token derived from the session (an HMAC of it), so it needs no storage
and dies with the session; every post is also checked for a foreign Origin. The sign-in form itself,
before any session exists, uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import Response

from api.deps import SessionDep, SettingsDep, user_from_token
from api.origin import same_origin
from config import Settings
from models.users import User

SESSION_COOKIE = "hcp_session"
LOGIN_CSRF_COOKIE = "hcp_login_csrf"


class LoginRequired(Exception):
    """No valid session: the page answers with the sign-in page (saying so when a session expired)."""

    def __init__(self, next_url: str, expired: bool) -> None:
        super().__init__(next_url)
        self.next_url, self.expired = next_url, expired


class CsrfRefused(Exception):
    """A form posted without the right token, or from another site."""


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.page_session_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=settings.cookies_secure,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.cookies_secure)


def csrf_token(settings: Settings, session_token: str) -> str:
    """The CSRF token of a session: an HMAC of it, so it needs no storage and ends with the session."""
    digest = hmac.new(settings.signing_key().encode(), f"csrf:{session_token}".encode(), hashlib.sha256)
    return digest.hexdigest()[:40]


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def login_url(next_url: str, expired: bool = False) -> str:
    query = f"?next={quote(next_url, safe='/')}" if next_url and next_url != "/" else ""
    if expired:
        query += ("&" if query else "?") + "expired=1"
    return f"/login{query}"


async def page_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    """The signed-in staff member; otherwise the sign-in page (LoginRequired)."""
    token = request.cookies.get(SESSION_COOKIE)
    user = await user_from_token(token, session, settings)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target if request.method == "GET" else "/", expired=bool(token))
    request.state.csrf = csrf_token(settings, token or "")
    request.state.user = user
    return user


PageUser = Annotated[User, Depends(page_user)]


async def form_user(
    request: Request, settings: SettingsDep, user: PageUser, csrf: Annotated[str, Form(max_length=64)] = ""
) -> User:
    """The signed-in staff member posting a form, once its CSRF token and Origin are checked."""
    expected = request.state.csrf
    if not same_origin(request, settings) or not csrf or not hmac.compare_digest(csrf.encode(), expected.encode()):
        raise CsrfRefused()
    return user


FormUser = Annotated[User, Depends(form_user)]
