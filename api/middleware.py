"""ASGI middlewares that every request passes through, outermost first:

- ``RequestIdMiddleware``: one id per request (a sane incoming ``X-Request-ID`` or a new one), in the
  ``X-Request-ID`` response header and in the log records about the request.
- ``AccessLogMiddleware``: method, route template, status, duration and request id. Never the raw path
  or query: the rater's one-time token is in the path (``/r/<token>``).
- ``SecurityHeadersMiddleware``: nosniff, no framing, no referrer, a strict Content-Security-Policy.
- ``UnexpectedErrorMiddleware``: any exception no handler answered becomes a JSON 500 carrying the
  request id, never a traceback.
- ``BodyLimitMiddleware``: bodies over ``request_body_max_bytes`` are refused with 413, declared or chunked.
- ``NulGuardMiddleware``: a NUL in the path or query string is a 422 (PostgreSQL cannot store or compare it).

They are plain ASGI (not ``BaseHTTPMiddleware``) so a streamed body is never buffered twice and an
exception keeps its original task and context.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_content
from runtime.logs import REQUEST_ID_SCOPE_KEY, request_scope_var

log = logging.getLogger(__name__)
access_log = logging.getLogger("hcp.access")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = REQUEST_ID_SCOPE_KEY
# Accept a caller's id only if it cannot smuggle anything into a log line or a header.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; "
    # Swagger UI and the rater page style elements inline; scripts stay 'self' only.
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
]


def request_id_of(scope: Scope) -> str:
    return scope.get(_REQUEST_ID_KEY) or request_id_var.get()


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/r/{token}``), or ``-`` before or without a match."""
    path = getattr(scope.get("route"), "path", None)
    if path is not None:
        return path
    if "endpoint" in scope and scope.get("root_path"):
        # A mount (the static files) sets no route, only its prefix as the root path.
        return f"{scope['root_path']}/{{path}}"
    return "-"


async def send_json(
    send: Send, status: int, content: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(content, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HttpMiddleware:
    """A pure ASGI middleware for HTTP requests; anything else (lifespan) passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestIdMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope[_REQUEST_ID_KEY] = request_id
        token = request_id_var.set(request_id)
        # Every line logged while this request is served carries its id, route and case (runtime/logs.py).
        scope_token = request_scope_var.set(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_scope_var.reset(scope_token)
            request_id_var.reset(token)


class AccessLogMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        # uvicorn configures only its own loggers; with its access log off this one must still print.
        if not access_log.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
            access_log.addHandler(handler)
            access_log.setLevel(logging.INFO)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = route_template(scope)
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            access_log.info(
                "%s %s %d %.1fms request_id=%s",
                scope["method"],
                route,
                status,
                duration_ms,
                request_id_of(scope),
                extra={"method": scope["method"], "route": route, "status": status, "duration_ms": duration_ms},
            )


class SecurityHeadersMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                # A route that sets its own policy (the rater page's no-referrer) keeps it.
                headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UnexpectedErrorMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: answer, log, go on
            request_id = request_id_of(scope)
            log.error(
                "unexpected %s on %s %s request_id=%s",
                type(exc).__name__,
                scope["method"],
                route_template(scope),
                request_id,
                exc_info=exc,
                extra={"request_id": request_id},
            )
            if started:
                return  # the answer is half sent; the client sees a cut response, the log has the cause
            await send_json(
                send,
                500,
                error_content(
                    "internal_error",
                    f"服务器内部错误，请稍后再试；如仍失败，请向运维人员提供请求编号 {request_id}",
                    request_id=request_id,
                ),
            )


class BodyLimitMiddleware(HttpMiddleware):
    """Reads the body up front, up to the limit: small bodies cost nothing extra, a large one never lands."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.larger = larger or {}  # exact paths that take more, e.g. a batch of ratings

    async def _refuse(self, send: Send, limit: int) -> None:
        await send_json(
            send,
            413,
            error_content("body_too_large", f"请求内容过大，最多 {limit // 1024} KiB"),
            # The rest of the body is not read: the connection cannot be reused for another request.
            [(b"connection", b"close")],
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.larger.get(scope["path"], self.max_bytes)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False  # the server refuses a malformed length before we see it
            if too_large:
                await self._refuse(send, limit)
                return
        chunks: list[bytes] = []
        size = 0
        pending: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending.append(message)  # the client went away: let the app see it
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if not pending:
            pending.append({"type": "http.request", "body": b"".join(chunks), "more_body": False})

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        await self.app(scope, replay, send)


class NulGuardMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        field = None
        if "\x00" in scope["path"]:
            field = "path"
        else:
            query = scope.get("query_string", b"").decode("latin-1")
            if "%00" in query or "\x00" in query:
                pairs = parse_qsl(query, keep_blank_values=True)
                field = next((k for k, v in pairs if "\x00" not in k and "\x00" in v), "query")
        if field is None:
            await self.app(scope, receive, send)
            return
        message = "text must not contain NUL (\\u0000) characters"
        await send_json(
            send,
            422,
            error_content(
                "invalid_request",
                "请求内容有误：不能包含 NUL 字符",
                field=field,
                errors=[{"field": field, "message": message, "type": "nul_character"}],
            ),
        )
