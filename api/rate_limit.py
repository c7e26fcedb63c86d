"""Per-client rate limits on the public routes (sign-in, the rater's pages and QR codes).

A fixed one-minute window per (client address, route group), kept in this process's memory: with
several API processes each enforces its own share. Enough to stop a script hammering one process;
a shared limit across processes needs a shared store and is a deployment choice (docs/operations.md).
"""

from __future__ import annotations

import time

from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.middleware import HttpMiddleware

PUBLIC_PREFIXES = ("/r/", "/q/", "/w/", "/qr/", "/public", "/login", "/api/v1/auth/token")
_API_PREFIX = "/api/"
_TOO_MANY = "请求过于频繁，请稍后再试"
# A person on a page gets a page, not JSON; it needs nothing from the app (no template, no database).
_TOO_MANY_PAGE = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1"><title>请稍后再试 · 政务服务好差评</title>'
    '<link rel="stylesheet" href="/static/app.css"></head><body class="narrow"><main id="main">'
    f"<h1>请稍后再试</h1><p>{_TOO_MANY}（约一分钟后）。</p></main></body></html>"
)
_MAX_TRACKED = 100_000


class PublicRateLimiter(HttpMiddleware):
    """Plain ASGI, like the app's other middleware: every request passes it, so it must cost next to nothing."""

    def __init__(self, app: ASGIApp, per_minute: int) -> None:
        super().__init__(app)
        self._per_minute = per_minute
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def allow(self, client: str, group: str, now: float | None = None) -> bool:
        minute = int((now if now is not None else time.time()) // 60)
        key = (client, group)
        window, count = self._windows.get(key, (minute, 0))
        if window != minute:
            window, count = minute, 0
        if len(self._windows) > _MAX_TRACKED:
            self._windows.clear()  # bounded memory under a flood of distinct addresses
        self._windows[key] = (window, count + 1)
        return count + 1 <= self._per_minute

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        group = next((p for p in PUBLIC_PREFIXES if path.startswith(p)), None)
        if group is None:
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self.allow(client, group):
            await self.app(scope, receive, send)
            return
        headers = {"Retry-After": "60"}
        if not group.startswith(_API_PREFIX):
            response: HTMLResponse | JSONResponse = HTMLResponse(_TOO_MANY_PAGE, status_code=429, headers=headers)
        else:
            response = JSONResponse(
                status_code=429, content={"detail": {"code": "rate_limited", "message": _TOO_MANY}}, headers=headers
            )
        await response(scope, receive, send)
