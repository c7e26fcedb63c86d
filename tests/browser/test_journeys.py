"""Whole journeys through the pages only, in Chromium: the people of the system doing their jobs.

Each journey screenshots every page it passes (test-artifacts/screenshots/) and runs the
accessibility check on each kind of page once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect
from sqlmodel import select

from models.case.records import Case
from models.case.vocabulary import Outcome, Stage
from models.db import Database
from runtime.mail_sink import MailSink
from runtime.seed import DemoCredentials
from tests.support.browser import PHONE, LiveServer, check_accessibility, screenshot
from tests.support.http import RATER
from tests.support.journeys import rater_link_in_mail, sign_in_by_keyboard, take_step
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


async def _case_stage(db: Database, case_id: int) -> tuple[Stage, int, Outcome | None]:
    async with db.session() as session:
        case = (await session.exec(select(Case).where(Case.id == case_id))).one()
        return case.stage, case.round, case.outcome


RATING_COMMENT = "窗口排队两个小时，材料被退回三次"


async def _started_case(db: Database) -> int | None:
    """The id of the one case, once its workflow has started."""
    async with db.session() as session:
        case = (await session.exec(select(Case))).first()
        return case.id if case is not None and case.workflow_started_at is not None else None


async def _handle_to_feedback(clerk: Page, case_url: str, *, first_round: bool) -> None:
    """The clerk takes the case from 签收 to 反馈 through its forms."""
    await clerk.goto(case_url)
    assert await take_step(clerk, "accept", {"备注": "已签收"}) == []
    await take_step(clerk, "callbacks", {"备注": "已致电评价人致歉"}, choices={"是否联系上评价人": "已联系上"})
    asked = await take_step(
        clerk,
        "verification",
        {"核实结论": "情况属实（整改）", "核实情况": "当日仅开一个窗口，排队属实", "差评研判": "合理"},
    )
    assert asked and "不可撤销" in asked[0]
    if first_round:
        await screenshot(clerk, "case-rectification")
    await take_step(clerk, "rectification", {"整改措施": "增开两个企业登记窗口"})
    await take_step(clerk, "feedback", {"内容": "我局已增开两个企业登记窗口，并推行预约办理。"})


async def test_rater_clerk_and_reopened_case(
    live_server: LiveServer, demo: DemoCredentials, mailbox: MailSink, db: Database, new_page: NewPage
) -> None:
    base = live_server.url
    # The hall's system asks for the transaction's own code (一人一事一码); the rater scans it on a phone.
    issued = await live_server.api.post(
        "/api/v1/service-records/DEMO-0001/rating-link", headers={"X-API-Key": demo.api_key}
    )
    assert issued.status_code == 201, issued.text
    assert issued.json()["url"].startswith(f"{base}/q/")
    rater = await new_page("rater", PHONE)
    await rater.goto(issued.json()["url"])
    await expect(rater.get_by_role("heading", level=1)).to_be_visible()
    await screenshot(rater, "rating-form")
    await check_accessibility(rater)
    levels = rater.get_by_role("group", name=re.compile("您对本次办事的总体评价"))
    await levels.get_by_label("非常不满意", exact=True).check()  # the Yantai profile's words for the level
    await rater.get_by_label("评价内容").fill(RATING_COMMENT)
    await rater.get_by_label("实名评价").check()
    await rater.get_by_label("电话").fill(RATER["phone"])
    await rater.get_by_label("电子邮箱").fill(RATER["email"])
    await rater.get_by_role("button", name="提交评价").click()
    await expect(rater.locator("body")).to_contain_text("接下来会怎样")
    await screenshot(rater, "thanks")
    await check_accessibility(rater)
    case_id = await eventually(lambda: _started_case(db))

    clerk = await new_page("clerk")
    await sign_in_by_keyboard(clerk, base, "scj_staff", demo.passwords["scj_staff"])
    await expect(clerk.get_by_role("heading", level=1)).to_have_text("待办工单")
    await screenshot(clerk, "inbox")
    await check_accessibility(clerk)
    await clerk.get_by_role("link", name=f"#{case_id}").click()
    await expect(clerk.get_by_role("heading", level=1)).to_contain_text(f"工单 #{case_id}")
    await screenshot(clerk, "case-assigned")
    await check_accessibility(clerk)
    await _handle_to_feedback(clerk, f"{base}/cases/{case_id}", first_round=True)
    await screenshot(clerk, "case-fed-back")

    await rater.goto(await rater_link_in_mail(mailbox, RATER["email"]))
    await screenshot(rater, "status-page")
    await check_accessibility(rater)
    await rater.get_by_role("button", name="不满意", exact=True).click()
    await expect(rater.locator("body")).to_contain_text("感谢")
    await screenshot(rater, "not-satisfied")

    async def reopened() -> bool:
        stage, round_, _ = await _case_stage(db, case_id)
        return stage == Stage.ASSIGNED and round_ == 2

    await eventually(reopened, timeout=30)

    await clerk.goto(f"{base}/cases")
    await expect(clerk.get_by_text("第 2 轮")).to_be_visible()
    await _handle_to_feedback(clerk, f"{base}/cases/{case_id}", first_round=False)

    await rater.goto(await rater_link_in_mail(mailbox, RATER["email"], count=2))
    await rater.get_by_role("button", name="满意", exact=True).click()
    await expect(rater.locator("body")).to_contain_text("感谢")

    async def closed() -> bool:
        stage, _, outcome = await _case_stage(db, case_id)
        return stage == Stage.CLOSED and outcome == Outcome.SATISFIED

    await eventually(closed, timeout=30)
    await clerk.goto(f"{base}/cases/{case_id}")
    await expect(clerk.locator("body")).to_contain_text("评价人满意")
    await screenshot(clerk, "case-closed")
    # One case for the one rating, and one result email per round: nothing doubled by the pages.
    async with db.session() as session:
        assert len((await session.exec(select(Case))).all()) == 1
    assert len(mailbox.to(RATER["email"])) == 2
