"""The production worker and API, wired onto a test database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from activities.sms import SmsGateway
from api.app import create_app
from config import Settings
from models.db import Database
from runtime.notice_relay import NoticeRelay
from runtime.temporal import TemporalConnection
from tests.openapi_conformance import CONFORMANCE
from tests.pii_watch import WATCH
from worker import build_worker


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, db: Database, sms: SmsGateway | None = None, **options: Any
) -> AsyncIterator[Worker]:
    """The production worker wiring (same registrations as worker.py) and its notice relay, on a test database."""
    activities = build_activities(settings, db, sms)
    stop = asyncio.Event()
    relay = asyncio.create_task(NoticeRelay(activities.sender, settings, activities.notices_written).run(stop))
    try:
        async with build_worker(client, settings, activities, **options) as worker:
            yield worker
    finally:
        stop.set()
        await relay


def api_client(settings: Settings, db: Database, temporal: TemporalConnection) -> httpx.AsyncClient:
    app = create_app(settings, db, temporal)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        event_hooks={"response": [WATCH.response_hook, CONFORMANCE.hook(app)]},
    )
