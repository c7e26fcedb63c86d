"""The worker's probes: a small HTTP listener on HCP_WORKER_HEALTH_PORT serving /healthz and /readyz.

The worker serves no HTTP otherwise, so this is a few lines of asyncio rather than a web framework:
GET only, one request per connection, a JSON answer. /healthz answers while the process and its
event loop live. /readyz is 200 only while the worker polls its task queue and the database answers
at this code's migration head; it is 503 while the worker connects to Temporal at start-up and from
the moment SIGTERM asks it to drain (runtime/readiness.py has the checks and their timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from enum import StrEnum

from temporalio.worker import Worker

from models.db import Database
from runtime.readiness import OK, PROBE_TIMEOUT_SECONDS, database_checks, is_ready, migration_heads

log = logging.getLogger(__name__)

_MAX_REQUEST_HEAD = 8192
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class Phase(StrEnum):
    """Where the worker is in its life, as its readiness tells it."""

    STARTING = "starting"  # connecting to Temporal
    POLLING = "polling"
    DRAINING = "draining"  # SIGTERM: polling stopped, running work finishing


class WorkerProbe:
    """The worker's state for its probes: set by worker.py as it starts, polls and drains."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._heads = migration_heads()
        self.phase = Phase.STARTING
        self._worker: Worker | None = None

    def polling(self, worker: Worker) -> None:
        """The Temporal worker has been started and polls its task queue."""
        self._worker, self.phase = worker, Phase.POLLING

    def draining(self) -> None:
        """Shutdown began: no longer ready, whatever the checks say."""
        self.phase = Phase.DRAINING

    def _worker_state(self) -> str:
        if self.phase == Phase.POLLING:
            return OK if self._worker is not None and self._worker.is_running else "stopped"
        return self.phase.value

    async def readiness(self) -> dict[str, str]:
        """Each check's state (the worker's phase, the database, its migrations)."""
        return {"worker": self._worker_state(), **await database_checks(self._db.engine, self._heads)}


async def serve_probes(probe: WorkerProbe, host: str, port: int) -> asyncio.Server:
    """Start the listener; close it with `server.close()` and `await server.wait_closed()`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await _answer(probe, reader)
            payload = json.dumps(body).encode()
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + payload)
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass  # the prober went away or never finished its request: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, port, limit=_MAX_REQUEST_HEAD)
    log.info("worker probes on %s:%d (/healthz, /readyz)", host, port)
    return server


async def _answer(probe: WorkerProbe, reader: asyncio.StreamReader) -> tuple[int, dict[str, object]]:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=PROBE_TIMEOUT_SECONDS)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return 400, {"status": "bad request"}
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(parts) != 3:
        return 400, {"status": "bad request"}
    method, path = parts[0], parts[1].split("?", 1)[0]
    if path not in ("/healthz", "/readyz"):
        return 404, {"status": "not found"}
    if method != "GET":
        return 405, {"status": "method not allowed"}
    if path == "/healthz":
        return 200, {"status": "ok"}
    checks = await probe.readiness()
    ready = is_ready(checks)
    return (200 if ready else 503), {"status": "ready" if ready else "unready", "checks": checks}


@contextlib.asynccontextmanager
async def worker_probes(probe: WorkerProbe, host: str, port: int) -> AsyncIterator[None]:
    """The probe listener for the block's duration; none when port is 0."""
    if not port:
        yield
        return
    server = await serve_probes(probe, host, port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()
