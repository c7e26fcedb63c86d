"""An administrator in Chromium finds a push the platform refused, and sends it again once it is fixed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlmodel import select

from config import Settings
from models.db import Database
from models.upstream import PushStatus, UpstreamPush
from runtime.seed import DemoCredentials
from tests.support.browser import LiveServer, check_accessibility, screenshot
from tests.support.journeys import sign_in
from tests.support.upstream import FakeUpstream, fake_upstream, reporting_to, running_upstream_relay
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as platform:
        yield platform


@pytest.fixture
def settings(settings: Settings, upstream: FakeUpstream) -> Settings:
    """The live server's settings, reporting to the test platform."""
    return reporting_to(settings, upstream)


async def _push_status(db: Database, status: PushStatus) -> bool:
    async with db.session() as session:
        push = (await session.exec(select(UpstreamPush))).first()
    return push is not None and push.status == status


async def test_administrator_retries_a_dead_letter_from_the_page(
    live_server: LiveServer,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    upstream: FakeUpstream,
    new_page: NewPage,
) -> None:
    upstream.answer = "reject"
    async with running_upstream_relay(db, settings):
        rated = await live_server.api.post(
            "/api/v1/ratings",
            json={"record_no": "DEMO-0002", "level": "satisfied", "channel": "mobile"},
            headers={"X-API-Key": demo.api_key},
        )
        assert rated.status_code == 201, rated.text
        await eventually(lambda: _push_status(db, PushStatus.DEAD))

        admin = await new_page("admin")
        await sign_in(admin, live_server.url, "admin", demo.passwords["admin"])
        await admin.get_by_role("link", name="数据上报").click()
        await expect(admin.get_by_role("heading", level=1)).to_have_text("数据上报")
        await expect(admin.locator("table")).to_contain_text("行政区划不在本平台范围")
        await screenshot(admin, "dead-letter")
        await check_accessibility(admin)

        upstream.answer = "ok"  # the platform's side is fixed
        await admin.get_by_role("button", name="重新上报").click()
        await expect(admin.locator(".flash")).to_contain_text("已重新排队上报")
        await eventually(lambda: _push_status(db, PushStatus.DELIVERED))
        await admin.reload()
        await expect(admin.locator("body")).to_contain_text("没有上报失败的记录")
        await screenshot(admin, "retried")
        await check_accessibility(admin)
    assert len(upstream.recorded) == 1 and len(upstream.requests) == 2
