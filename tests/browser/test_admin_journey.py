"""An administrator in Chromium: a new unit, a user for it who then signs in, and a new policy version."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect
from sqlmodel import col, select

from models.audit import AuditEvent
from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.browser import LiveServer, check_accessibility, screenshot
from tests.support.journeys import sign_in

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


async def _option_value(page: Page, select_id: str, text: str) -> str:
    value = await page.locator(f"#{select_id} option", has_text=text).first.get_attribute("value")
    assert value, (select_id, text)
    return value


async def test_administrator_sets_up_a_unit_a_user_and_a_policy_version(
    live_server: LiveServer, demo: DemoCredentials, db: Database, new_page: NewPage
) -> None:
    base = live_server.url
    admin = await new_page("admin")
    await sign_in(admin, base, "admin", demo.passwords["admin"])
    await expect(admin.get_by_role("heading", level=1)).to_have_text("单位")
    await screenshot(admin, "units")
    await check_accessibility(admin)

    await admin.get_by_label("上级单位（督办单位）").select_option("YT-ZWB")
    await admin.get_by_label("单位编码").fill("YT-GAJ")
    await admin.get_by_label("单位名称").fill("烟台市公安局")
    await admin.get_by_label("行政区划").select_option("370600")
    await admin.get_by_role("button", name="创建单位").click()
    await expect(admin.locator(".flash")).to_be_visible()
    await expect(admin.locator("body")).to_contain_text("烟台市公安局")

    await admin.get_by_role("link", name="用户", exact=True).click()
    await expect(admin.get_by_role("heading", level=1)).to_have_text("用户")
    await admin.get_by_label("用户名").fill("gaj_staff")
    await admin.get_by_label("姓名").fill("公安局 赵承办")
    await admin.get_by_label("电子邮箱").fill("zhao.gaj@yantai.gov.cn")
    await admin.get_by_label("角色").select_option("unit_staff")
    await admin.get_by_label("所属单位").select_option(await _option_value(admin, "user-unit", "烟台市公安局"))
    await screenshot(admin, "user-form")
    await admin.get_by_role("button", name="创建用户").click()
    password = (await admin.locator("code.secret").inner_text()).strip()
    assert len(password) >= 12
    await screenshot(admin, "user-created")
    await check_accessibility(admin)

    newcomer = await new_page("newcomer")
    await sign_in(newcomer, base, "gaj_staff", password)
    await expect(newcomer.get_by_role("heading", level=1)).to_have_text("待办工单")

    # A new version of the Yantai profile: the callback deadline from 1 to 2 working days.
    await admin.goto(f"{base}/admin/policies/yantai/edit")
    await screenshot(admin, "policy-edit")
    await check_accessibility(admin)
    profile = json.loads(await admin.get_by_label("规则内容（JSON）").input_value())
    profile["deadlines"]["callback"]["within"] = "2wd"
    await admin.get_by_label("规则内容（JSON）").fill(json.dumps(profile, ensure_ascii=False, indent=2))
    await admin.get_by_label("修改说明").fill("按市政务服务管理办公室通知，回访时限调整为 2 个工作日")
    await admin.get_by_role("button", name="发布新版本").click()
    await expect(admin.locator(".flash")).to_be_visible()
    await expect(admin.locator("body")).to_contain_text("2 个工作日")
    await screenshot(admin, "policy-published")

    await admin.goto(f"{base}/admin/policies/yantai/diff?from=1&to=2")
    await expect(admin.locator("body")).to_contain_text("2wd")
    await screenshot(admin, "policy-diff")
    await check_accessibility(admin)

    async with db.session() as session:
        actions = (
            await session.exec(
                select(AuditEvent.action).where(
                    col(AuditEvent.action).in_(["unit.create", "user.create", "policy.edit"])
                )
            )
        ).all()
    assert sorted(actions) == ["policy.edit", "unit.create", "user.create"]
