"""The dashboard (数据看板) and the display screen (数据大屏) in Chromium: the charts are drawn by the app's own
ECharts under its Content-Security-Policy, a number and a chart bar open the rows or the unit behind them, the
screen redraws a new rating in place, and axe finds nothing on any of the pages.

The February 2025 figures are the hand-counted datasets of the indicator tests, written directly.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import ConsoleMessage, Page, expect

from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.browser import LiveServer, check_accessibility, screenshot
from tests.support.http import bad_rating
from tests.support.indicator_data import rows
from tests.support.indicator_datasets import cases, february
from tests.support.journeys import sign_in

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]
CHARTS = ("trend", "levels", "channels", "units", "rungs")


def console_errors(page: Page) -> list[str]:
    """Errors the page logs (a script failing, a CSP refusal, a resource not found) and uncaught exceptions."""
    seen: list[str] = []

    def note(message: ConsoleMessage) -> None:
        url = message.location.get("url", "")
        # The app serves no icon, and Chromium asks every page for one: not the dashboard's to answer.
        if message.type == "error" and not url.endswith("/favicon.ico"):
            seen.append(f"{message.text} at {url}")

    page.on("console", note)
    page.on("pageerror", lambda error: seen.append(f"uncaught: {error}"))
    return seen


async def drawn_series(page: Page, chart_id: str) -> int:
    """How many series ECharts holds for a chart (0 when it never set an option), after it drew a canvas."""
    chart = page.locator(f'[data-chart="{chart_id}"]')
    await expect(chart).to_be_visible()
    await expect(chart.locator("canvas").first).to_be_visible()
    return int(
        await chart.evaluate(
            "el => { const c = window.echarts.getInstanceByDom(el); return c ? c.getOption().series.length : 0; }"
        )
    )


async def test_a_supervisor_reads_the_dashboard_and_opens_what_is_behind_a_number(
    live_server: LiveServer, demo: DemoCredentials, db: Database, new_page: NewPage
) -> None:
    async with rows(db) as r:
        await february(r)
        await cases(r)
    base = live_server.url
    supervisor = await new_page("supervisor")
    errors = console_errors(supervisor)
    await sign_in(supervisor, base, "supervisor", demo.passwords["supervisor"])
    await supervisor.get_by_role("link", name="数据看板").click()
    await expect(supervisor.get_by_role("heading", level=1)).to_have_text("数据看板")

    assert await drawn_series(supervisor, "trend") == 4  # this month's, drawn: the page's script has run
    # February 2025 through the form: typing a date switches the period to a range of one's own.
    await supervisor.get_by_label("开始日期").fill("2025-02-01")
    await supervisor.get_by_label("结束日期").fill("2025-02-28")
    await expect(supervisor.get_by_label("时间")).to_have_value("range")
    await supervisor.get_by_role("button", name="查看").click()
    await expect(supervisor.locator(".dash-scope")).to_contain_text("2025-02-01 至 2025-02-28")
    for chart_id in CHARTS:
        assert await drawn_series(supervisor, chart_id) >= 1, chart_id
    trend = supervisor.locator('[data-chart="trend"]')
    days = await trend.evaluate("el => window.echarts.getInstanceByDom(el).getOption().xAxis[0].data.length")
    assert days == 28
    # Drawn, the tables fold away; one click opens one.
    await expect(supervisor.locator("details.chart-data[open]")).to_have_count(0)
    # A figure's definition opens on hover (and on a tap or Enter: it is a <details>).
    definition = supervisor.locator("#tile-bad_rate details.definition")
    await definition.locator("summary").hover()
    await expect(definition.get_by_text("差评率 = 差评数 ÷ 评价数")).to_be_visible()
    await screenshot(supervisor, "dashboard")
    await check_accessibility(supervisor)

    # The bad reviews behind the bad rate: the list says the same number.
    bad = supervisor.locator("#tile-bad_rate").get_by_role("link", name=re.compile("差评数"))
    shown = (await bad.locator(".n").inner_text()).replace(",", "")
    await bad.click()
    await expect(supervisor.get_by_role("heading", level=1)).to_have_text("差评数明细")
    await expect(supervisor.locator("[data-total]")).to_have_attribute("data-total", shown)
    await expect(supervisor.locator("tbody tr")).to_have_count(min(int(shown), 20))
    await expect(supervisor.locator("body")).to_contain_text("139****1111")
    await expect(supervisor.locator("body")).not_to_contain_text("13900001111")
    await screenshot(supervisor, "drill-down-list")
    await check_accessibility(supervisor)

    # A bar of the unit ranking opens that unit's own dashboard.
    await supervisor.go_back()
    ranking = supervisor.locator('[data-chart="units"]')
    assert await drawn_series(supervisor, "units") == 1
    target = await ranking.evaluate(
        """el => {
            const chart = window.echarts.getInstanceByDom(el);
            const option = chart.getOption();
            const index = option.yAxis[0].data.indexOf("烟台市市场监督管理局");
            const value = option.series[0].data[index];
            const [x, y] = chart.convertToPixel({seriesIndex: 0}, [value / 2, index]);
            return {x, y, index};
        }"""
    )
    assert target["index"] >= 0
    await ranking.click(position={"x": target["x"], "y": target["y"]})
    await expect(supervisor.locator(".dash-scope")).to_contain_text("烟台市市场监督管理局（含下级单位）")
    assert re.search(r"unit_id=2(&|$)", supervisor.url), supervisor.url

    # On a phone the tiles stack and the charts still draw.
    phone = await new_page("supervisor", viewport={"width": 390, "height": 844})
    await phone.set_viewport_size({"width": 390, "height": 844})
    await phone.goto(f"{base}/dashboard?period=range&from=2025-02-01&to=2025-02-28")
    assert await drawn_series(phone, "trend") == 4
    await screenshot(phone, "dashboard-phone")
    assert errors == [], errors


async def test_the_display_screen_draws_dark_and_takes_in_a_new_rating_without_reloading(
    live_server: LiveServer, demo: DemoCredentials, db: Database, new_page: NewPage
) -> None:
    base = live_server.url
    office = await new_page("office", viewport={"width": 1920, "height": 1080})
    errors = console_errors(office)
    await sign_in(office, base, "supervisor", demo.passwords["supervisor"])
    await office.goto(f"{base}/dashboard/screen?period=this_month&refresh=5")
    await expect(office.get_by_role("heading", level=1)).to_have_text("政务服务“好差评”数据大屏")
    for chart_id in CHARTS:
        assert await drawn_series(office, chart_id) >= 1, chart_id
    ratings = office.locator('[data-figure="ratings"]')
    before = int((await ratings.inner_text()).replace(",", ""))
    assert before == 0  # the demo's transactions are unrated
    background = await office.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(10, 22, 40)"
    await office.evaluate("window.stillTheSamePage = true")

    rated = await live_server.api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    assert rated.status_code == 201, rated.text
    await expect(ratings).to_have_text(str(before + 1), timeout=20_000)
    await expect(office.locator('[data-figure="bad_rate"]')).to_have_text("100.0%")
    # 评价数 stands under the score, the good rate and the bad rate: each place has the new count.
    await expect(office.locator('[data-part="ratings"]')).to_have_text([str(before + 1)] * 3)
    await expect(office.locator('[data-part="bad_ratings"]')).to_have_text(str(before + 1))
    assert await office.evaluate("window.stillTheSamePage === true")  # redrawn in place, not reloaded
    levels = office.locator('[data-chart="levels"]')
    drawn = await levels.evaluate("el => window.echarts.getInstanceByDom(el).getOption().series[0].data[4].value")
    assert drawn >= 1  # the 非常不满意 slice has the new rating
    await expect(office.locator("#screen-status")).to_have_text("")
    await screenshot(office, "screen")
    await check_accessibility(office)

    # A month with every kind of figure, as the hall would show it.
    async with rows(db) as r:
        await february(r)
        await cases(r)
    await office.goto(f"{base}/dashboard/screen?period=range&from=2025-02-01&to=2025-02-28")
    for chart_id in CHARTS:
        assert await drawn_series(office, chart_id) >= 1, chart_id
    await expect(office.locator('[data-figure="overdue_open_cases"]')).to_have_text("2")
    await screenshot(office, "screen-february")
    await check_accessibility(office)
    assert errors == [], errors
