"""Delivery across API processes: two app instances on two ports, each with its own hub and listening connection.

PostgreSQL only, on purpose: LISTEN/NOTIFY is the mechanism under test (on SQLite there is one process).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
import pytest
import pytest_asyncio

from api.devices.bus import CHANNEL, PostgresBus, Push, decode_notice, psycopg_conninfo
from api.devices.protocol import CloseCode
from config import Settings
from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.devices import add_staff, device, device_server, forget_seed_link
from tests.support.waiting import eventually
from tests.test_device_pushes import expect_page


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest_asyncio.fixture
async def hall(demo: DemoCredentials, db: Database) -> DemoCredentials:
    await forget_seed_link(db)
    return demo


@contextlib.asynccontextmanager
async def notices_seen(settings: Settings) -> AsyncIterator[list[str]]:
    """Every notice on the devices' channel while open, as a third listener sees them."""
    seen: list[str] = []
    async with await psycopg.AsyncConnection.connect(psycopg_conninfo(settings.database_url), autocommit=True) as conn:
        await conn.execute(f"LISTEN {CHANNEL}")

        async def listen() -> None:
            async for note in conn.notifies():
                seen.append(note.payload)

        task = asyncio.create_task(listen())
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_page_reaches_a_device_connected_to_another_process(settings: Settings, hall: DemoCredentials) -> None:
    async with (
        notices_seen(settings) as seen,
        device_server(settings) as a,
        device_server(settings) as b,
        device(b) as chen_on_b,
        device(a) as zhou_on_a,
    ):
        assert (await chen_on_b.login("SCJ-001", hall.api_key))["type"] == "login_ok"
        assert (await zhou_on_a.login("RSJ-001", hall.api_key))["type"] == "login_ok"

        # Registered through process A; 陈窗口's device is connected to process B.
        assert (await a.register(hall.api_key)).status_code == 201
        page = await expect_page(chen_on_b, "YT-2026-DEV-0001")
        opened = await a.api.get(str(page["url"]).removeprefix(b.settings.public_base_url))
        assert opened.status_code == 200 and "陈窗口" in opened.text
        await chen_on_b.nothing_more()
        await zhou_on_a.nothing_more()
        pushes = [n for n in map(decode_notice, seen) if isinstance(n, Push)]
        assert len(pushes) == 1 and pushes[0].source_system == "demo-hall"  # one notice, delivered once

        # 陈窗口 logs in at process A: the device on B is replaced, and the next page goes to A only.
        async with device(a) as chen_on_a:
            assert (await chen_on_a.login("SCJ-001", hall.api_key))["type"] == "login_ok"
            await expect_page(chen_on_a, "YT-2026-DEV-0001")  # not rated yet: still pending for 陈窗口
            replaced = await chen_on_b.receive()
            assert replaced["type"] == "replaced", replaced
            assert await chen_on_b.closed_with() == CloseCode.REPLACED
            assert (await b.register(hall.api_key, record_no="YT-2026-DEV-0002")).status_code == 201
            await expect_page(chen_on_a, "YT-2026-DEV-0002")
            await chen_on_a.nothing_more()
            await eventually(lambda: truth(b.hub.connected() == 0))
            assert a.hub.connected() == 2


async def test_two_logins_at_once_in_two_processes_leave_one_device(
    settings: Settings, hall: DemoCredentials, db: Database
) -> None:
    staff = ["SCJ-001", "SCJ-002", "SCJ-003", "SCJ-004"]  # one race per staff member: each may interleave differently
    for n, staff_no in enumerate(staff[1:], start=2):
        await add_staff(db, unit_id=2, staff_no=staff_no, name=f"窗口{n}")
    async with device_server(settings) as a, device_server(settings) as b:
        for staff_no in staff:
            async with device(a) as first, device(b) as second:
                answers = await asyncio.gather(
                    first.login(staff_no, hall.api_key), second.login(staff_no, hall.api_key)
                )
                assert [answer["type"] for answer in answers] == ["login_ok", "login_ok"]
                # Exactly one of them is told it was replaced; the other stays the staff member's device.
                codes = await asyncio.gather(
                    first.closed_with(timeout=1), second.closed_with(timeout=1), return_exceptions=True
                )
                replaced = [i for i, code in enumerate(codes) if code == CloseCode.REPLACED]
                assert len(replaced) == 1 and isinstance(codes[1 - replaced[0]], TimeoutError), (staff_no, codes)
                survivor = (first, second)[1 - replaced[0]]
                created = await a.register(hall.api_key, record_no=f"RACE-{staff_no}", staff_no=staff_no)
                assert created.status_code == 201
                await expect_page(survivor, f"RACE-{staff_no}")
                await survivor.nothing_more()
                await eventually(lambda: truth(a.hub.connected() + b.hub.connected() == 1))


async def test_a_lost_listening_connection_is_made_again_and_missed_pages_are_sent(
    settings: Settings, hall: DemoCredentials
) -> None:
    async with device_server(settings) as server, device(server) as chen:
        assert (await chen.login("SCJ-001", hall.api_key))["type"] == "login_ok"
        # A page delivered before the loss, not rated yet: after it, the device must not get it a second time.
        assert (await server.register(hall.api_key)).status_code == 201
        await expect_page(chen, "YT-2026-DEV-0001")
        bus = server.hub.bus
        assert isinstance(bus, PostgresBus) and bus.backend_pid is not None
        missed = 0
        for n in range(1, 6):
            lost_pid = bus.backend_pid
            await terminate(settings, lost_pid)
            await eventually(lambda: truth(bus.backend_pid is None), timeout=10, interval=0.002)
            assert (await server.register(hall.api_key, record_no=f"YT-2026-LOST-{n}")).status_code == 201
            # Still not listening once it committed: its notice never reaches this process.
            missed += bus.backend_pid is None
            await eventually(lambda: truth(bus.backend_pid not in (None, lost_pid)), timeout=10)  # noqa: B023
            # Listening again, the process looks for what its devices may have missed: the page arrives, once.
            await expect_page(chen, f"YT-2026-LOST-{n}")
            await chen.nothing_more()
            if missed:
                break
        assert missed, "no registration fell in the gap while the listening connection was down"


async def terminate(settings: Settings, backend_pid: int | None) -> None:
    """End one server connection, as a database restart or a network cut would."""
    conninfo = psycopg_conninfo(settings.database_url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))


async def truth(value: bool) -> bool:
    return value
