"""Supervisors and reviewers at work in Chromium: an overdue case chased, an extension approved, a case
reassigned; an appeal upheld so the rating leaves the unit's figures.

The case to chase is set up through the API (a rectification put on the ledger a few seconds ahead, so it
falls overdue on the real clock); everything the supervisor and the reviewer do is done in the pages.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect
from sqlmodel import col, select

from models.case.records import Case, CaseEvent
from models.case.vocabulary import Outcome, Stage
from models.db import Database
from models.ratings import Rating
from runtime.mail_sink import MailSink, message_text
from runtime.seed import DemoCredentials
from tests.support.browser import LiveServer, check_accessibility, screenshot
from tests.support.http import login
from tests.support.http_case import VERIFIED, open_case, take_steps
from tests.support.journeys import sign_in, take_step
from tests.support.waiting import delivered, eventually

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


async def _case(db: Database, case_id: int) -> Case:
    async with db.session() as session:
        return (await session.exec(select(Case).where(Case.id == case_id))).one()


async def _events(db: Database, case_id: int, action: str) -> int:
    async with db.session() as session:
        rows = await session.exec(
            select(CaseEvent).where(CaseEvent.case_id == case_id, col(CaseEvent.action) == action)
        )
        return len(rows.all())


async def test_supervisor_chases_an_overdue_case(
    live_server: LiveServer, demo: DemoCredentials, db: Database, mailbox: MailSink, new_page: NewPage
) -> None:
    base, api = live_server.url, live_server.api
    staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
    case_id = await open_case(api, demo, staff)
    await take_steps(api, case_id, staff, VERIFIED)
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    await take_steps(api, case_id, staff, (("ledger", {"plan": "增设自助终端", "due_at": soon}),))

    async def overdue() -> bool:
        return (await _case(db, case_id)).overdue

    await eventually(overdue, timeout=30)

    # The unit asks for more time from its case page.
    clerk = await new_page("clerk")
    await sign_in(clerk, base, "scj_staff", demo.passwords["scj_staff"])
    await clerk.goto(f"{base}/cases/{case_id}")
    tomorrow = (datetime.now(UTC) + timedelta(days=7)).astimezone().strftime("%Y-%m-%dT%H:%M")
    await take_step(
        clerk, "extension-requests", {"延期的时限": "台账整改", "新的期限": tomorrow, "理由": "设备采购需走招标程序"}
    )

    # The request reaches the supervisor by email; its link opens the case page, after signing in.
    mail = (await delivered(mailbox, "supervisor@hcp.localhost", subject="延期申请"))[-1]
    link = re.search(r"(https?://\S+/cases/\d+)", message_text(mail))
    assert link is not None and link.group(1) == f"{base}/cases/{case_id}", message_text(mail)
    supervisor = await new_page("supervisor")
    await supervisor.goto(link.group(1))
    await expect(supervisor.get_by_role("heading", level=1)).to_have_text("工作人员登录")
    await supervisor.get_by_label("用户名").fill("supervisor")
    await supervisor.get_by_label("密码").fill(demo.passwords["supervisor"])
    await supervisor.get_by_role("button", name="登录").click()
    await expect(supervisor.get_by_role("heading", level=1)).to_contain_text(f"工单 #{case_id}")

    await supervisor.goto(f"{base}/")
    await expect(supervisor.get_by_role("heading", level=1)).to_have_text("督办看板")
    overdue_rows = supervisor.locator("#overdue ~ div table")
    await expect(overdue_rows.get_by_role("link", name=f"#{case_id}")).to_be_visible()
    await expect(supervisor.locator("body")).to_contain_text("督办 1 级")
    await screenshot(supervisor, "board")
    await check_accessibility(supervisor)

    # The pending request leads to the case page's approval form.
    await supervisor.get_by_role("link", name="去审批").first.click()
    await expect(supervisor.get_by_role("heading", level=1)).to_contain_text(f"工单 #{case_id}")
    await screenshot(supervisor, "case-for-approval")
    await check_accessibility(supervisor)
    await take_step(supervisor, "extension-decision", {"备注": "同意延期至设备到位"}, choices={"审批意见": "同意"})
    assert await _events(db, case_id, "extension_approved") == 1

    asked = await take_step(
        supervisor, "reassignment", {"改派至单位": "烟台市人力资源和社会保障局", "理由": "涉及社保窗口设置"}
    )
    assert asked and "改派" in asked[0]
    await screenshot(supervisor, "case-reassigned")

    async def reassigned() -> bool:
        case = await _case(db, case_id)
        return case.unit_id != 2 and case.stage == Stage.ASSIGNED

    await eventually(reassigned)
    assert await _events(db, case_id, "reassigned") == 1
    await supervisor.goto(f"{base}/ledger")
    await expect(supervisor.get_by_role("heading", level=1)).to_have_text("整改台账")
    await screenshot(supervisor, "ledger")
    await check_accessibility(supervisor)


async def test_reviewer_upholds_an_appeal(
    live_server: LiveServer, demo: DemoCredentials, db: Database, new_page: NewPage
) -> None:
    base, api = live_server.url, live_server.api
    staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
    case_id = await open_case(api, demo, staff)

    clerk = await new_page("clerk")
    await sign_in(clerk, base, "scj_staff", demo.passwords["scj_staff"])
    await clerk.goto(f"{base}/cases/{case_id}")
    await take_step(clerk, "accept", {"备注": "已签收"})
    await take_step(clerk, "callbacks", {"备注": "评价人称误点"}, choices={"是否联系上评价人": "已联系上"})
    await take_step(
        clerk,
        "verification",
        {"核实结论": "误评或恶意差评（申诉）", "核实情况": "评价人确认误点“很差”", "差评研判": "不合理"},
    )
    await take_step(
        clerk,
        "appeal",
        {"理由": "评价人误操作", "证据材料（每行一项：说明或文件编号）": "回访录音 2026-11-23\n评价人书面说明"},
    )

    reviewer = await new_page("reviewer")
    await sign_in(reviewer, base, "reviewer", demo.passwords["reviewer"])
    await expect(reviewer.get_by_role("heading", level=1)).to_have_text("申诉复核")
    await expect(reviewer.locator("body")).to_contain_text("回访录音 2026-11-23")
    await screenshot(reviewer, "appeal-queue")
    await check_accessibility(reviewer)
    await reviewer.get_by_role("link", name=f"#{case_id}").first.click()
    asked = await take_step(
        reviewer, "appeal-decision", {"理由": "录音证实评价人误操作"}, choices={"复核决定": "申诉成立（差评不予采纳）"}
    )
    assert asked and "不可撤销" in asked[0]
    await expect(reviewer.locator("body")).to_contain_text("差评不予采纳")
    await screenshot(reviewer, "appeal-upheld")

    async def not_adopted() -> bool:
        case = await _case(db, case_id)
        return case.stage == Stage.NOT_ADOPTED and case.outcome == Outcome.NOT_ADOPTED

    await eventually(not_adopted)
    async with db.session() as session:
        rating = await session.get(Rating, (await _case(db, case_id)).rating_id)
        assert rating is not None and rating.adopted is False  # it leaves the unit's figures
    await reviewer.goto(f"{base}/reviews/decided")
    await expect(reviewer.locator("body")).to_contain_text("申诉成立，不予采纳")
    await screenshot(reviewer, "decided")
    await check_accessibility(reviewer)
