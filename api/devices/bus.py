"""Notices between API processes about devices: a page to push, a staff member who logged in elsewhere.

The API may run as several processes, and a device is connected to one of them. On PostgreSQL each
process that has a device connected LISTENs on one channel and a notice is a NOTIFY: a push is sent
inside the transaction that registers the service record, so it is delivered only if that commits,
and to every listening process in commit order. On SQLite (one process) the notice is handed to
this process's hub after the commit. A notice carries ids only: the rating link is read from the
database by the process that delivers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import psycopg
from sqlalchemy import func
from sqlalchemy.engine import URL, make_url
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger("hcp.devices")

CHANNEL = "hcp_devices"
_LIVENESS_SECONDS = 30.0  # how often a quiet listening connection is checked
_BACKOFF_FIRST, _BACKOFF_MAX = 0.2, 5.0


@dataclass(frozen=True)
class Push:
    """Open this invitation's rating page on the device of this staff member, if it holds this system's key."""

    invitation_id: int
    staff_id: int
    source_system: str


@dataclass(frozen=True)
class LoggedIn:
    """A device of this staff member logged in (connection id): every older one, in any process, is replaced."""

    staff_id: int
    connection_id: str


Notice = Push | LoggedIn
Receiver = Callable[[Notice], None]


def encode_notice(notice: Notice) -> str:
    if isinstance(notice, Push):
        return json.dumps({"k": "push", "i": notice.invitation_id, "s": notice.staff_id, "src": notice.source_system})
    return json.dumps({"k": "login", "s": notice.staff_id, "c": notice.connection_id})


def decode_notice(payload: str) -> Notice | None:
    try:
        data = json.loads(payload)
        if data["k"] == "push":
            return Push(invitation_id=int(data["i"]), staff_id=int(data["s"]), source_system=str(data["src"]))
        if data["k"] == "login":
            return LoggedIn(staff_id=int(data["s"]), connection_id=str(data["c"]))
    except (ValueError, KeyError, TypeError):
        pass
    log.warning("device notice ignored: not one this version understands")
    return None


class Bus(Protocol):
    async def start(self) -> None:
        """Be ready to receive (idempotent); raises TimeoutError if that cannot be done now."""

    async def send(self, session: AsyncSession, notice: Notice) -> None:
        """Send inside the session's transaction: delivered only if it commits (the caller commits)."""

    async def committed(self, notice: Notice) -> None:
        """Called after the commit of a transaction that sent the notice."""

    async def close(self) -> None: ...


class LocalBus:
    """One process (SQLite): a committed notice goes straight to this process's hub."""

    def __init__(self, receive: Receiver) -> None:
        self._receive = receive

    async def start(self) -> None:
        return None

    async def send(self, session: AsyncSession, notice: Notice) -> None:
        return None

    async def committed(self, notice: Notice) -> None:
        self._receive(notice)

    async def close(self) -> None:
        return None


def psycopg_conninfo(sqlalchemy_url: str | URL) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL (driver name dropped, password and options kept)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBus:
    """LISTEN/NOTIFY on one channel, over a connection of its own that is made again if it is lost."""

    def __init__(self, conninfo: str, receive: Receiver, resync: Callable[[], None], ready_timeout: float) -> None:
        self._conninfo = conninfo
        self._receive = receive
        self._resync = resync  # after a lost connection: notices may have been missed meanwhile
        self._ready_timeout = ready_timeout
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.backend_pid: int | None = None  # of the listening connection (operators, and the fault test)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="device-bus-listener")
        await asyncio.wait_for(self._listening.wait(), timeout=self._ready_timeout)

    async def send(self, session: AsyncSession, notice: Notice) -> None:
        await session.exec(select(func.pg_notify(CHANNEL, encode_notice(notice))))

    async def committed(self, notice: Notice) -> None:
        return None  # every listening process, this one included, receives it from the database

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        backoff, connected_before = _BACKOFF_FIRST, False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    self._listening.set()
                    if connected_before:
                        log.info("device notices: listening again; pending pages of connected devices sent again")
                        self._resync()
                    connected_before, backoff = True, _BACKOFF_FIRST
                    await self._receive_until_lost(conn)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("device notices: listening connection lost (%s); retrying", type(exc).__name__)
            finally:
                self._listening.clear()
                self.backend_pid = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _receive_until_lost(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        while True:
            async for note in conn.notifies(timeout=_LIVENESS_SECONDS):
                notice = decode_notice(note.payload)
                if notice is not None:
                    self._receive(notice)
            # Quiet for a while: make sure the connection is still there (a silent network drop never raises).
            await asyncio.wait_for(conn.execute("SELECT 1"), timeout=_LIVENESS_SECONDS)
