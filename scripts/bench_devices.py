"""Benchmark: window rating devices — registration cost, push latency, fan-out (docs/devices.md, Measurements).

    PYTHONPATH=. .venv/bin/python scripts/bench_devices.py [--backend sqlite|postgresql] [--devices 200]

Makes a scratch database (a SQLite file, or a PostgreSQL database on 127.0.0.1:5432 that is dropped
afterwards), migrates it and loads the demo data plus one window worker per device. Serves two app
instances with uvicorn on free ports (the test harness, tests/support/devices.py) and measures:

- `POST /api/v1/service-records`, online (no device work) and window with staff (invitation, notice);
- POST sent → `open_rating` read by a device, connected to the same instance and (PostgreSQL) the other;
- N devices connected, N window transactions registered 10 at a time: time until every page arrived.

Server, devices and client share one event loop and core: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from config import Settings
from migrations import upgrade
from models.db import Database
from runtime.seed import DemoCredentials, seed_demo
from tests.support.devices import Device, DeviceServer, add_staff, device, device_server, forget_seed_link
from tests.support.settings import make_settings

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def show(name: str, ms: list[float]) -> None:
    p95 = sorted(ms)[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(f"{name}: n={len(ms)}, median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms", flush=True)


async def registrations(server: DeviceServer, demo: DemoCredentials) -> None:
    for kind in ("online", "window"):
        ms = []
        for n in range(200):
            change: dict[str, object] = {"record_no": f"REG-{kind}-{n}"}
            if kind == "online":
                change |= {"staff_no": None, "service_channel": "online"}
            started = time.perf_counter()
            response = await server.register(demo.api_key, **change)
            ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 201, response.text
        show(f"POST /api/v1/service-records, {kind}", ms)


async def push_latency(registering: DeviceServer, holding: DeviceServer, demo: DemoCredentials, where: str) -> None:
    async with device(holding) as pad:
        assert (await pad.login("RSJ-001", demo.api_key))["type"] == "login_ok"
        ms = []
        for n in range(100):
            change = {"record_no": f"PUSH-{where}-{n}", "unit_code": "YT-RSJ", "staff_no": "RSJ-001"}
            started = time.perf_counter()
            response = await registering.register(demo.api_key, **change)
            page = await pad.receive()
            ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 201 and page["type"] == "open_rating", page
        show(f"POST → open_rating, device on the {where} instance", ms)


async def fan_out(registering: DeviceServer, holding: DeviceServer, demo: DemoCredentials, count: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pads: list[Device] = [await stack.enter_async_context(device(holding)) for _ in range(count)]
        for n, pad in enumerate(pads):
            assert (await pad.login(f"FAN-{n:04d}", demo.api_key))["type"] == "login_ok"
        gate = asyncio.Semaphore(10)

        async def register(n: int) -> None:
            async with gate:
                change = {"record_no": f"FAN-R-{n}", "staff_no": f"FAN-{n:04d}"}
                assert (await registering.register(demo.api_key, **change)).status_code == 201

        started = time.perf_counter()
        await asyncio.gather(*(register(n) for n in range(count)), *(pad.receive(timeout=120) for pad in pads))
        seconds = time.perf_counter() - started
        print(f"{count} devices, {count} registrations 10 at a time: every page delivered in {seconds:.2f} s")


async def run(settings: Settings, backend: str, count: int) -> None:
    db = Database(settings.async_sqlalchemy_url)
    try:
        demo = await seed_demo(db, settings)
        await forget_seed_link(db)
        for n in range(count):
            await add_staff(db, unit_id=2, staff_no=f"FAN-{n:04d}", name=f"窗口{n}")
    finally:
        await db.dispose()
    async with device_server(settings) as a, device_server(settings) as b:
        print(f"{backend}:")
        await registrations(a, demo)
        await push_latency(a, a, demo, "same")
        if backend == "postgresql":
            await push_latency(a, b, demo, "other")
        await fan_out(a, b if backend == "postgresql" else a, demo, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--devices", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hcp-bench-devices-"))
    name = f"hcp_bench_devices_{uuid.uuid4().hex[:8]}"
    url = (
        f"sqlite:///{tmp / 'hcp.db'}"
        if args.backend == "sqlite"
        else f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    )
    if args.backend == "postgresql":
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(url)
        asyncio.run(run(make_settings(url, tmp, smtp_port=2525), args.backend, args.devices))
    finally:
        if args.backend == "postgresql":
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
