"""The rater's one-time answer page in Chromium on a phone: it loads, is accessible, and takes an answer once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from runtime.mail_sink import MailSink
from runtime.seed import DemoCredentials
from tests.support.browser import PHONE, LiveServer, check_accessibility, rater_link_of_new_case, screenshot

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


async def open_answer_page(page: Page, link: str) -> None:
    """The page loads with 200, has a heading and a form with the two answers."""
    response = await page.goto(link)
    assert response is not None and response.status == 200, response and await response.text()
    await expect(page.locator("h1").first).to_be_visible()
    form = page.locator("form").filter(has=page.get_by_role("button", name="满意", exact=True))
    await expect(form.get_by_role("button", name="满意", exact=True)).to_be_visible()
    await expect(form.get_by_role("button", name="不满意", exact=True)).to_be_visible()


async def test_rater_answers_satisfied_on_a_phone(
    live_server: LiveServer, demo: DemoCredentials, mailbox: MailSink, new_page: NewPage
) -> None:
    link = await rater_link_of_new_case(live_server, demo, mailbox)
    page = await new_page("rater", PHONE)
    await open_answer_page(page, link)
    await screenshot(page, "answer-page")
    await check_accessibility(page)

    async with page.expect_navigation() as navigation:
        await page.get_by_role("button", name="满意", exact=True).click()
    answered = await navigation.value
    assert answered is not None
    # Chromium posts the page's own form with `Origin: null` (the page is no-referrer) and
    # `Sec-Fetch-Site: same-origin`; the origin check must take it.
    assert await answered.request.header_value("origin") == "null"
    assert answered.status == 200, await answered.text()
    await expect(page.locator("body")).to_contain_text("感谢")
    await screenshot(page, "thanks")
    await check_accessibility(page)


async def test_form_without_its_csrf_token_is_refused(
    live_server: LiveServer, demo: DemoCredentials, mailbox: MailSink, new_page: NewPage
) -> None:
    link = await rater_link_of_new_case(live_server, demo, mailbox)
    page = await new_page("rater", PHONE)
    await open_answer_page(page, link)

    # The page's own form, posted by the browser (cookie and Origin as usual) without its token.
    removed = await page.evaluate(
        """() => {
            const inputs = document.querySelectorAll('form input[name="csrf"]');
            inputs.forEach((input) => input.remove());
            return inputs.length;
        }"""
    )
    assert removed == 1
    async with page.expect_navigation() as navigation:
        await page.get_by_role("button", name="满意", exact=True).click()
    refused = await navigation.value
    assert refused is not None and refused.status == 403
    await expect(page.locator("body")).not_to_contain_text("感谢您的确认")
    await screenshot(page, "refused")

    # Nothing was taken: the link still shows the form.
    await open_answer_page(page, link)
