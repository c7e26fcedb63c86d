"""Window rating devices (评价器) over WebSocket: login, refusals, the failed-login limit, heartbeats, protocol errors.

A scripted device (the `websockets` client) talks to the app served by uvicorn on a free port.
Pushed rating pages, replacement and delivery across processes: tests/test_device_pushes.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import pytest_asyncio

from api.devices.login import LoginFailures
from api.devices.protocol import LOGIN_FAILED_MESSAGE, CloseCode
from config import Settings
from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.devices import device, device_server, forget_seed_link
from tests.support.http import login


@pytest_asyncio.fixture
async def hall(demo: DemoCredentials, db: Database) -> DemoCredentials:
    """The demo data with nothing pending for a device at first."""
    await forget_seed_link(db)
    return demo


def wrong_secret(key: str) -> str:
    """The same key prefix (the row is found) with another secret."""
    return key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")


async def test_a_device_logs_in_with_a_work_number_and_its_hall_systems_key(
    settings: Settings, demo: DemoCredentials
) -> None:
    async with device_server(settings, login_max_failures=50) as server:
        async with device(server) as pad:
            ok = await pad.login("SCJ-001", demo.api_key)
            assert ok["type"] == "login_ok", ok
            assert (ok["staff_no"], ok["staff_name"], ok["unit_name"]) == ("SCJ-001", "陈窗口", "烟台市市场监督管理局")
            assert isinstance(ok["heartbeat_seconds"], int) and ok["heartbeat_seconds"] == 60
            assert ok["server_time"].endswith("+08:00")
            # The seed's rating link (DEMO-0007, 陈窗口's window transaction) is still open: the device opens it.
            pending = await pad.receive()
            assert (pending["type"], pending["record_no"]) == ("open_rating", "DEMO-0007"), pending
            await pad.send(type="login", staff_no="SCJ-001", key=demo.api_key)
            assert (await pad.receive())["code"] == "already_logged_in"
            await pad.nothing_more()

        admin = await login(server.api, "admin", demo.passwords["admin"])
        made = await server.api.post(
            "/api/v1/admin/api-keys", json={"name": "二号大厅", "source_system": "hall-2"}, headers=admin
        )
        assert made.status_code == 201, made.text
        other_key, other_key_id = made.json()["key"], made.json()["id"]
        refusals = {
            "wrong secret": ("SCJ-001", wrong_secret(demo.api_key)),
            "not a key": ("SCJ-001", "not-a-key"),
            "unknown staff": ("SCJ-999", demo.api_key),
            # hall-2 has registered no transaction of 市场监管局: its key cannot speak for that unit's staff.
            "unit not covered": ("SCJ-001", other_key),
        }
        for why, (staff_no, key) in refusals.items():
            async with device(server) as pad:
                failed = await pad.login(staff_no, key)
                assert failed == {"type": "login_failed", "code": "login_failed", "message": LOGIN_FAILED_MESSAGE}, why
                assert await pad.closed_with() == CloseCode.LOGIN_FAILED, why

        # Once hall-2 registers a transaction of 人社局, its key covers that unit's staff.
        online = {"record_no": "HALL2-0001", "unit_code": "YT-RSJ", "staff_no": None, "service_channel": "online"}
        assert (await server.register(other_key, **online)).status_code == 201
        async with device(server) as pad:
            assert (await pad.login("RSJ-001", other_key))["type"] == "login_ok"
        revoked = await server.api.delete(f"/api/v1/admin/api-keys/{other_key_id}", headers=admin)
        assert revoked.status_code in (200, 204), revoked.text
        async with device(server) as pad:
            assert (await pad.login("RSJ-001", other_key))["code"] == "login_failed"


async def test_a_revoked_key_ends_its_devices_sessions_at_the_next_heartbeat(
    settings: Settings, hall: DemoCredentials
) -> None:
    async with device_server(settings) as server, device(server) as pad:
        assert (await pad.login("SCJ-001", hall.api_key))["type"] == "login_ok"
        admin = await login(server.api, "admin", hall.passwords["admin"])
        assert (await server.api.delete("/api/v1/admin/api-keys/1", headers=admin)).status_code in (200, 204)
        ended = await pad.heartbeat()
        assert ended["type"] == "error" and ended["code"] == "key_revoked" and "吊销" in ended["message"]
        assert await pad.closed_with() == CloseCode.KEY_REVOKED


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the limit lives in the process, not the database
async def test_failed_logins_are_limited_per_client_address(settings: Settings, hall: DemoCredentials) -> None:
    async with device_server(settings, login_max_failures=3) as server:
        for _ in range(3):
            async with device(server) as pad:
                assert (await pad.login("SCJ-001", wrong_secret(hall.api_key)))["code"] == "login_failed"
        async with device(server) as pad:
            locked = await pad.login("SCJ-001", hall.api_key)  # even the right key waits
            assert locked["type"] == "login_failed" and locked["code"] == "too_many_failures", locked
            assert 880 <= locked["retry_after"] <= 900 and "15 分钟后再试" in locked["message"]
            assert await pad.closed_with() == CloseCode.TOO_MANY_FAILURES
        # Another client address is not held up by this one's failures.
        async with device(server, local_address="127.0.0.2") as pad:
            assert (await pad.login("SCJ-001", hall.api_key))["type"] == "login_ok"


def test_the_failed_login_window() -> None:
    limit = LoginFailures(limit=2, window_seconds=60)
    assert limit.begin("a", now=0) is None
    assert limit.begin("a", now=1) is None
    limit.forgive("a", 1)  # the second try succeeded: not a failure
    assert limit.begin("a", now=2) is None
    assert limit.begin("a", now=3) == 57  # two failures within the minute: wait for the oldest to age out
    assert limit.begin("a", now=30) == 30  # refused tries are not counted, so knocking does not prolong it
    assert limit.begin("b", now=30) is None
    assert limit.begin("a", now=60) is None  # the first failure is a minute old


async def test_heartbeats_are_acknowledged_and_a_silent_device_is_dropped(
    settings: Settings, hall: DemoCredentials
) -> None:
    interval = 0.4
    async with device_server(settings, device_heartbeat_seconds=interval) as server:
        async with device(server) as pad:
            assert (await pad.heartbeat())["code"] == "not_logged_in"
            ok = await pad.login("SCJ-001", hall.api_key)
            assert ok["heartbeat_seconds"] == interval
            # Heartbeats on time keep it connected well past the silence limit (2.5 intervals).
            started = time.monotonic()
            while time.monotonic() - started < 4 * interval:
                last = time.monotonic()
                ack = await pad.heartbeat()
                assert ack["type"] == "heartbeat_ack" and ack["server_time"].endswith("+08:00")
                await asyncio.sleep(interval * 0.75)
            dropped = await pad.receive(timeout=10)
            silent_for = time.monotonic() - last
            assert dropped["type"] == "error" and dropped["code"] == "heartbeat_timeout", dropped
            assert 2.5 * interval - 0.1 <= silent_for <= 2.5 * interval + 1.0, silent_for
            assert await pad.closed_with() == CloseCode.SILENT
        # A connection that never logs in is dropped the same way.
        async with device(server) as pad:
            assert (await pad.receive(timeout=10))["code"] == "heartbeat_timeout"
            assert await pad.closed_with() == CloseCode.SILENT


async def test_malformed_messages_are_answered_in_chinese_and_the_device_stays_connected(
    settings: Settings, hall: DemoCredentials
) -> None:
    async with device_server(settings) as server, device(server) as pad:
        assert (await pad.login("SCJ-001", hall.api_key))["type"] == "login_ok"
        answers = []
        for raw in ("not json", "[1, 2]", json.dumps({"type": "login"}), json.dumps({"type": "reboot"})):
            await pad.connection.send(raw)
            answers.append(await pad.receive())
        await pad.connection.send(b"\x00\x01")
        answers.append(await pad.receive())
        assert [a["code"] for a in answers] == [
            "bad_message",
            "bad_message",
            "bad_message",
            "unknown_command",
            "bad_message",
        ]
        assert all(a["type"] == "error" and ("指令" in a["message"] or "消息" in a["message"]) for a in answers)
        # Fields a device adds of its own are ignored.
        await pad.send(type="heartbeat", device_id="PAD-07", firmware="3.2.1")
        assert (await pad.receive())["type"] == "heartbeat_ack"
        await pad.connection.send(json.dumps({"type": "heartbeat", "pad": "x" * 5000}))
        too_long = await pad.receive()
        assert too_long["code"] == "message_too_large"
        assert await pad.closed_with() == CloseCode.TOO_LARGE
