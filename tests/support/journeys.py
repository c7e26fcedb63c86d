"""Driving the pages in Chromium as people do: signing in, opening a step's form, filling it by its labels."""

from __future__ import annotations

import re

from playwright.async_api import Dialog, Page, expect

from runtime.mail_sink import MailSink, message_text
from tests.support.waiting import delivered


async def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in through the form; the browser lands on the person's start page."""
    await page.goto(f"{base_url}/login")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("button", name="退出登录")).to_be_visible()


async def sign_in_by_keyboard(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in without a mouse: the name field has the focus, Tab to the password, Enter to send."""
    await page.goto(f"{base_url}/login")
    await expect(page.get_by_label("用户名")).to_be_focused()
    await page.keyboard.type(username)
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("密码")).to_be_focused()
    await page.keyboard.type(password)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="退出登录")).to_be_visible()


async def take_step(
    page: Page, step: str, fields: dict[str, str], *, choices: dict[str, str] | None = None
) -> list[str]:
    """Open a step's form on the case page, fill text fields and pick choices by their labels, and send it.

    `fields`: label → text (inputs, textareas and selects alike); `choices`: group legend → radio label.
    A confirmation the page asks for is accepted; returns what was asked (nothing for a reversible step).
    """
    form = page.locator(f"#step-{step}")
    if await form.get_attribute("open") is None:
        await form.locator("summary").click()
    for label, value in fields.items():
        # A required field's label ends in "*".
        control = form.get_by_label(re.compile(rf"^{re.escape(label)}\s*\*?$"))
        if await control.evaluate("el => el.tagName") == "SELECT":
            await control.select_option(label=value)
        else:
            await control.fill(value)
    for legend, answer in (choices or {}).items():
        group = form.get_by_role("group", name=re.compile(rf"^{re.escape(legend)}\s*\*?$"))
        await group.get_by_label(answer, exact=True).check()
    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    if not asked:
        page.remove_listener("dialog", accept)
    await expect(page.locator(".flash")).to_contain_text("已办理")
    return asked


async def rater_link_in_mail(mailbox: MailSink, address: str, count: int = 1) -> str:
    """The newest one-time link the rater got by email, once `count` feedback emails have arrived."""
    mails = await delivered(mailbox, address, count=count, timeout=30)
    found = re.findall(r"(https?://\S+/r/[A-Za-z0-9_-]+)", message_text(mails[-1]))
    assert found, message_text(mails[-1])
    return str(found[-1])
