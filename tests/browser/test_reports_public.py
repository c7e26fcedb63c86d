"""排名通报, 月度报告 and 结果全公开 in Chromium: a supervisor reads March 2025's ranking, publishes its report
(confirming first) and sees the frozen version with its hash, approves a rectification text the redaction
check masked, and a rater on a phone, not signed in, reads the published month without the planted
personal data; axe finds nothing on any of the pages.

March 2025 is the hand-counted month of tests/support/ranking_data.py, with one more bad review of unit 3
whose rectification and feedback texts hold the rater's name, phone and ID number.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Dialog, Locator, Page, expect
from sqlmodel import select

from models.db import Database
from models.reports.records import MonthlyReport
from runtime.seed import DemoCredentials
from tests.support.browser import PHONE, LiveServer, check_accessibility, screenshot
from tests.support.journeys import sign_in
from tests.support.ranking_data import closed_case_with_texts, small_rules, three_months

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]
NAME, RATER_PHONE, ID_CARD = "李四光", "13811112222", "370602199001011234"
PLANTED = [NAME, RATER_PHONE, ID_CARD, "1381111"]


async def planted_case(db: Database) -> int:
    """A closed, on-time March case of unit 3 (a 非常不满意, real name) whose texts name the rater."""
    return await closed_case_with_texts(
        db,
        "PUB-BROWSER-1",
        measures=f"已致电{NAME}（{RATER_PHONE}），核对身份证{ID_CARD}，并增开社保窗口",
        feedback=f"{NAME}您好，已增开窗口",
        comment="等候时间太长",
        rater_name=NAME,
        rater_phone=RATER_PHONE,
    )


async def published(db: Database) -> list[MonthlyReport]:
    async with db.session() as session:
        return list((await session.exec(select(MonthlyReport).where(MonthlyReport.month == "2025-03"))).all())


async def test_a_supervisor_ranks_and_publishes_a_month_and_a_rater_reads_it_on_a_phone(
    live_server: LiveServer, demo: DemoCredentials, db: Database, new_page: NewPage
) -> None:
    await small_rules(db)
    await three_months(db)
    case = await planted_case(db)
    base = live_server.url
    supervisor = await new_page("supervisor")
    await sign_in(supervisor, base, "supervisor", demo.passwords["supervisor"])

    # 排名通报 for March through the form. By hand (0.5 score/5 + 0.3 good + 0.2 on time): 甲局 and 乙局
    # 93.33 (tied first), 人社局 80.00 (5 5 4 1, on time), 市场监管局 57.50 (5 4 4 1, late); 丙局 too few.
    await supervisor.goto(f"{base}/rankings")
    await expect(supervisor.get_by_role("heading", level=1)).to_have_text("排名通报")
    await supervisor.get_by_label("月份").fill("2025-03")
    await supervisor.get_by_role("button", name="查看").click()
    await expect(supervisor.get_by_text(re.compile(r"2025-03 · 单位排名（共 4 个参与排名）"))).to_be_visible()
    ranked = supervisor.locator("table tbody tr")
    await expect(ranked).to_have_count(6)  # the office (unit 1) is listed without ratings, unranked

    def row(name: str) -> Locator:
        return ranked.filter(has=supervisor.get_by_role("cell", name=name, exact=True))

    for name in ("甲局", "乙局"):
        await expect(row(name)).to_contain_text("1（并列）")
        await expect(row(name)).to_contain_text("93.33")
    await expect(row("烟台市人力资源和社会保障局").locator("td").first).to_have_text("3")
    await expect(row("烟台市人力资源和社会保障局")).to_contain_text("80.00")
    await expect(row("烟台市市场监督管理局").locator("td").first).to_have_text("4")
    await expect(row("烟台市市场监督管理局")).to_contain_text("57.50")
    await expect(row("烟台市市场监督管理局")).to_contain_text("排名靠后")
    await expect(row("丙局").locator("td").first).to_have_text("—")
    # At the bottom in February too: flagged for a talk.
    await expect(supervisor.get_by_role("region", name="约谈提示")).to_contain_text("烟台市市场监督管理局")
    await screenshot(supervisor, "rankings")
    await check_accessibility(supervisor)

    # 月度报告: the draft, then 发布 after the confirmation; the frozen version shows the stored hash.
    await supervisor.goto(f"{base}/reports?month=2025-03")
    await expect(supervisor.get_by_role("heading", level=1)).to_have_text("月度报告")
    await expect(supervisor.get_by_text("本月报告尚未发布。")).to_be_visible()
    await check_accessibility(supervisor)
    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    supervisor.once("dialog", accept)
    await supervisor.get_by_role("button", name=re.compile(r"^发布 .* 2025-03 月度报告$")).click()
    await expect(supervisor.locator(".flash")).to_contain_text("已发布：内容已冻结。")
    assert len(asked) == 1 and "冻结" in asked[0], asked
    [report] = await published(db)
    assert re.fullmatch(r"[0-9a-f]{64}", report.content_sha256)
    assert supervisor.url.endswith(f"/reports/version?id={report.id}&done=published"), supervisor.url
    await expect(supervisor.get_by_role("heading", level=1)).to_have_text(f"{report.title}（第 1 版）")
    await expect(supervisor.locator("dl.facts")).to_contain_text(report.content_sha256)
    await screenshot(supervisor, "report-published")
    await check_accessibility(supervisor)
    # Back on the month's page: one version listed, and no second 发布 button.
    await supervisor.goto(f"{base}/reports?month=2025-03")
    await expect(supervisor.get_by_role("region", name="已发布版本").locator("li")).to_have_count(1)
    await expect(supervisor.get_by_role("button", name=re.compile("^发布 "))).to_have_count(0)

    # 整改情况公开审核: the planted case's text comes masked; approving it makes it public.
    await supervisor.goto(f"{base}/disclosures?month=2025-03")
    planted = supervisor.get_by_role("region", name=re.compile(rf"^工单 #{case} "))
    await expect(planted).to_contain_text("脱敏检查发现")
    await expect(planted.get_by_label("公开文本（可修改）")).to_contain_text("［电话号码已隐去］")
    await check_accessibility(supervisor)
    await planted.get_by_role("button", name="审核通过并公开").click()
    await expect(supervisor.locator(".flash").first).to_contain_text("已保存。")
    await expect(supervisor.get_by_role("region", name=re.compile(rf"^工单 #{case} "))).to_contain_text("已公开")
    assert len(await published(db)) == 1  # the review changes no published version

    # A rater on a phone, not signed in: the published month, its rankings and the approved text.
    rater = await new_page("rater", PHONE)
    await rater.goto(f"{base}/public")
    await expect(rater.get_by_role("heading", level=1)).to_have_text("政务服务“好差评”结果公开")
    await check_accessibility(rater)
    await rater.get_by_role("link", name=report.title).click()
    await expect(rater.get_by_role("heading", level=1)).to_have_text(report.title)
    await expect(rater.locator("code.hash")).to_have_text(report.content_sha256)
    await expect(rater.get_by_role("heading", name="单位排名")).to_be_visible()
    await expect(rater.locator("main")).to_contain_text("烟台市人力资源和社会保障局")
    await expect(rater.locator("main")).to_contain_text("增开社保窗口")
    await expect(rater.locator("main")).to_contain_text("［身份证号已隐去］")
    for text in (await rater.locator("body").inner_text(), await rater.content()):
        found = [value for value in PLANTED if value in text]
        assert not found, f"personal data on the public page: {found}"
    assert "工作人员排名" not in await rater.content()  # staff rankings name people: staff pages only
    # Narrow for a phone: nothing wider than the screen but the tables' own scrolling wrappers.
    wide = await rater.evaluate(
        "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth)"
        ".map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
    )
    assert await rater.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wide
    await screenshot(rater, "public-report-phone")
    await check_accessibility(rater)
