"""Window rating devices in tests: a live server to connect to, and a scripted device (the `websockets` client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlmodel import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.app import create_app
from api.devices.hub import DeviceHub
from api.devices.router import DEVICES_PATH
from config import Settings
from models.db import Database
from models.organisation import Staff
from models.rating_invitations import RatingInvitation
from runtime.temporal import TemporalConnection
from tests.support.browser import LiveServer, listening_socket, serve, url_of
from tests.support.settings import free_port
from tests.support.unrated import completed_recently

# A window transaction of 市场监管局 handled by 陈窗口 (SCJ-001); change record_no and staff_no per use.
WINDOW_RECORD = {
    "record_no": "YT-2026-DEV-0001",
    "item_code": "370600-XK-0001",
    "unit_code": "YT-SCJ",
    "staff_no": "SCJ-001",
    "applicant_type": "legal_person",
    "service_channel": "window",
    "completed_at": completed_recently(),
}
QUIET = 0.5  # how long "nothing more arrives" is watched for


@dataclass
class DeviceServer:
    """One API instance served by uvicorn on its own port (its own hub, its own listening connection)."""

    live: LiveServer
    settings: Settings

    @property
    def ws_url(self) -> str:
        return self.live.url.replace("http://", "ws://") + DEVICES_PATH

    @property
    def api(self) -> httpx.AsyncClient:
        return self.live.api

    @property
    def hub(self) -> DeviceHub:
        return self.live.app.state.devices

    async def register(self, api_key: str, **change: object) -> httpx.Response:
        body = {**WINDOW_RECORD, **change}
        return await self.api.post("/api/v1/service-records", json=body, headers={"X-API-Key": api_key})


@asynccontextmanager
async def device_server(settings: Settings, **overrides: Any) -> AsyncIterator[DeviceServer]:
    """create_app on a live port with its own Database; Temporal is not needed (no case is opened)."""
    with listening_socket() as sock:
        served = settings.model_copy(update={"public_base_url": url_of(sock), **overrides})
        db = Database(served.async_sqlalchemy_url)
        offline = TemporalConnection(served.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"}))
        try:
            async with serve(create_app(served, db, offline), sock) as live:
                yield DeviceServer(live, served)
        finally:
            await db.dispose()


class Device:
    """A scripted rating device: sends commands, reads what the server says."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, **message: Any) -> None:
        await self.connection.send(json.dumps(message, ensure_ascii=False))

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), timeout=timeout)
        assert isinstance(raw, str), raw
        return dict(json.loads(raw))

    async def login(self, staff_no: str, key: str) -> dict[str, Any]:
        await self.send(type="login", staff_no=staff_no, key=key)
        return await self.receive()

    async def heartbeat(self) -> dict[str, Any]:
        await self.send(type="heartbeat")
        return await self.receive()

    async def nothing_more(self, within: float = QUIET) -> None:
        """Nothing arrives for a while, and the connection is still open (a heartbeat is answered)."""
        try:
            extra = await asyncio.wait_for(self.connection.recv(), timeout=within)
        except TimeoutError:
            pass
        else:
            raise AssertionError(f"unexpected message: {extra!r}")
        assert (await self.heartbeat())["type"] == "heartbeat_ack"

    async def closed_with(self, timeout: float = 10.0) -> int | None:
        """Wait until the server closes the connection (reading anything still queued); the close code."""
        try:
            while True:
                await asyncio.wait_for(self.connection.recv(), timeout=timeout)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


@asynccontextmanager
async def device(server: DeviceServer, local_address: str = "127.0.0.1") -> AsyncIterator[Device]:
    """A device connected to the server (from a chosen loopback address: the per-client limit is by address)."""
    # proxy=None: never route the test's connection through a proxy named in the environment.
    async with connect(server.ws_url, proxy=None, open_timeout=10, local_addr=(local_address, 0)) as connection:
        yield Device(connection)


async def forget_seed_link(db: Database) -> None:
    """Without the seed's open rating link (DEMO-0007, 陈窗口's), a device has nothing pending at first."""
    async with db.session() as session:
        for invitation in (await session.exec(select(RatingInvitation))).all():
            await session.delete(invitation)
        await session.commit()


async def add_staff(db: Database, unit_id: int, staff_no: str, name: str) -> int:
    """Another window worker of a unit (the seed has one per unit)."""
    async with db.session() as session:
        staff = Staff(unit_id=unit_id, staff_no=staff_no, name=name)
        session.add(staff)
        await session.commit()
        assert staff.id is not None
        return staff.id
