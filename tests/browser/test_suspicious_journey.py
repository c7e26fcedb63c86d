"""A supervisor reviews a suspicious-rating flag in Chromium: from the navigation to the flag, its reason and
ratings (the rater masked), and a decision through the form; both pages pass the accessibility check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from runtime.seed import DemoCredentials
from tests.support.browser import LiveServer, check_accessibility, screenshot
from tests.support.journeys import sign_in

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


async def test_supervisor_dismisses_a_flag(live_server: LiveServer, demo: DemoCredentials, new_page: NewPage) -> None:
    # The demo hall system rates its own window transactions as if from a PC: a channel it has no front end for.
    for record_no in ("DEMO-0001", "DEMO-0004"):
        body = {"record_no": record_no, "level": "very_satisfied", "channel": "pc", "real_name": True,
                "rater": {"name": "王测试", "phone": "13812348000"}}  # fmt: skip
        rated = await live_server.api.post("/api/v1/ratings", json=body, headers={"X-API-Key": demo.api_key})
        assert rated.status_code == 201, rated.text

    page = await new_page("supervisor")
    await sign_in(page, live_server.url, "supervisor", demo.passwords["supervisor"])
    await page.get_by_role("link", name="可疑评价").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("可疑评价")
    flag = page.get_by_role("region", name="标记 #1 · 来源系统提交了其不具备的评价渠道（疑似系统代评）")
    await expect(flag).to_contain_text("为它自己登记的窗口办件提交了「PC端」渠道的评价")
    await expect(flag.get_by_role("table")).to_contain_text("138****8000")
    await expect(flag).not_to_contain_text("13812348000")
    await check_accessibility(page)
    await screenshot(page, "suspicious-queue")

    await flag.get_by_label("排除（评价正常）").check()
    await flag.get_by_label("核查说明").fill("大厅系统误把补录评价标成 PC 端，已通知厂商修正")
    await flag.get_by_role("button", name="提交核查结论").click()
    await expect(page.locator(".flash")).to_have_text("已排除该可疑评价标记。")
    await expect(page.get_by_text("没有符合条件的可疑评价标记。")).to_be_visible()
    await check_accessibility(page)

    await page.get_by_label("处理状态").select_option(label="已排除")
    await page.get_by_role("button", name="筛选").click()
    await expect(
        page.get_by_role("region", name="标记 #1 · 来源系统提交了其不具备的评价渠道（疑似系统代评）")
    ).to_contain_text("大厅系统误把补录评价标成 PC 端")
