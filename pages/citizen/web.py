"""What every rater page shares: one template environment, answers never cached, the CSRF double submit.

The rater's pages are public: the random token (or a window's printed code) is the only way in.
Each form carries a CSRF token that must equal a cookie set with the page (SameSite=Strict, scoped
to the page's path), and a post whose Origin is another site's is refused.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.origin import same_origin
from config import Settings
from models.deadlines import CHINA_TZ, clock_text_zh
from templating import template_environment

_env = template_environment("pages", escape="always")
_env.filters["clock"] = clock_text_zh
_env.filters["china_date"] = lambda value: value.astimezone(CHINA_TZ).strftime("%Y-%m-%d")

# The pages show a rater's own case and own answers: never kept by a cache, never sent on as a referrer.
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
CSRF_MAX_AGE = 24 * 3600


def page(template: str, status_code: int, title: str, retry_after: int | None = None, **context: Any) -> HTMLResponse:
    """A rater page from templates/pages/citizen/."""
    html = _env.get_template(f"citizen/{template}").render(title=title, **{"flash": "", **context})
    headers = dict(NO_STORE)
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def notice(status_code: int, title: str, message: str, retry_after: int | None = None) -> HTMLResponse:
    """A page that only says something (an invalid, used or expired link; a refusal)."""
    return page("notice.html.j2", status_code, title, retry_after=retry_after, message=message)


def token_shape_ok(token: str) -> bool:
    """Tokens are URL-safe base64 of a fixed length; anything else is answered without a lookup."""
    return 8 <= len(token) <= 128 and all(ch.isalnum() or ch in "_-" for ch in token)


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_csrf(response: HTMLResponse, settings: Settings, cookie: str, path: str, value: str) -> None:
    """Bind the form's CSRF token to this browser, for this page's path only."""
    response.set_cookie(
        cookie,
        value,
        httponly=True,
        samesite="strict",
        secure=settings.cookies_secure,
        path=path,
        max_age=CSRF_MAX_AGE,
    )


def csrf_ok(request: Request, settings: Settings, cookie: str, sent: str) -> bool:
    """The form's token matches the cookie, and a browser's Origin (when it sends one) is this site."""
    stored = request.cookies.get(cookie, "")
    return (
        same_origin(request, settings)
        and bool(sent)
        and len(sent) <= 64
        and hmac.compare_digest(sent.encode(), stored.encode())
    )


def form_text(form: Any, name: str, limit: int) -> str:
    """One text field of a posted form, trimmed; a file or an over-long value counts as what fits."""
    value = form.get(name, "")
    return value.strip()[: limit + 1] if isinstance(value, str) else ""


def with_defaults(given: dict[str, object], **defaults: object) -> dict[str, Any]:
    """A template context: what was given, and the defaults for what was not."""
    return {**defaults, **given}
