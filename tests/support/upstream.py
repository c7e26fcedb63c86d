"""A small upstream platform on a real port: it answers as a test tells it, and keeps what it received.

It honours the Idempotency-Key as a platform should: a push id it has recorded is not recorded
again, whatever happened to the answer. `requests` is every request that reached it; `recorded` is
each push id it counted, once. It can answer 200, 4xx or 500, record and then fail or hang past the
caller's timeout, and be stopped (connections refused) and started again on the same port.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import Settings
from models.db import Database
from runtime.upstream_relay import UpstreamRelay

Answer = Literal["ok", "error", "reject", "record_then_error", "record_then_hang"]


@dataclass
class Received:
    key: str
    authorization: str
    body: dict[str, Any]


class _Server(uvicorn.Server):
    """uvicorn in the test's event loop; Ctrl-C stays pytest's."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class FakeUpstream:
    """The platform. Set `answer` (every request) or queue `next_answers` (one each, first)."""

    answer: Answer = "ok"
    next_answers: list[Answer] = field(default_factory=list)
    token: str = "upstream-test-token"
    hang_seconds: float = 3.0
    requests: list[Received] = field(default_factory=list)
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    port: int = 0
    _server: _Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/hcp/pushes"

    def recorded_of(self, kind: str) -> list[dict[str, Any]]:
        return [body for body in self.recorded.values() if body["type"] == kind]

    async def _push(self, request: Request) -> Response:
        body = await request.json()
        key = request.headers.get("idempotency-key", "")
        self.requests.append(Received(key, request.headers.get("authorization", ""), body))
        answer = self.next_answers.pop(0) if self.next_answers else self.answer
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"code": "unauthorized", "message": "令牌无效"}, status_code=401)
        if not key or body.get("push_id") != key:
            return JSONResponse({"code": "bad_request", "message": "缺少推送编号"}, status_code=400)
        if answer == "error":
            return JSONResponse({"code": "internal", "message": "平台繁忙"}, status_code=500)
        if answer == "reject":
            # Echoes what it refused, as platforms do: the sender must not copy contact details into its records.
            return JSONResponse(
                {"code": "invalid", "message": "行政区划不在本平台范围", "contact": "13800009999", "echo": body},
                status_code=422,
            )
        duplicate = key in self.recorded
        self.recorded.setdefault(key, body)
        if answer == "record_then_error":
            return JSONResponse({"code": "internal", "message": "写入后应答失败"}, status_code=500)
        if answer == "record_then_hang":
            await asyncio.sleep(self.hang_seconds)
        return JSONResponse({"received": key, "duplicate": duplicate})

    async def start(self) -> None:
        """Listen (again) on the port: the first start picks a free one, later starts reuse it."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/api/hcp/pushes", self._push, methods=["POST"])])
        config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening: from now on connections are refused."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None


@asynccontextmanager
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


def reporting_to(settings: Settings, upstream: FakeUpstream, **overrides: Any) -> Settings:
    """The test's settings with reporting on, to the fake platform, with short waits."""
    values: dict[str, Any] = {
        "upstream_url": upstream.url,
        "upstream_token": upstream.token,
        "upstream_timeout_seconds": 1.0,
        "upstream_backoff_seconds": 0.2,
        "upstream_backoff_max_seconds": 1.0,
        "upstream_max_attempts": 5,
        "upstream_relay_interval_seconds": 0.1,
        "upstream_lease_seconds": 10.0,
    }
    return settings.model_copy(update={**values, **overrides})


@asynccontextmanager
async def running_upstream_relay(db: Database, settings: Settings) -> AsyncIterator[None]:
    """The worker's upstream relay (runtime/upstream_relay.py), as worker.py runs it."""
    stop = asyncio.Event()
    task = asyncio.create_task(UpstreamRelay(db, settings).run(stop))
    try:
        yield
    finally:
        stop.set()
        await task
