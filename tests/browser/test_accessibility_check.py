"""The browser helpers see what they should: axe-core names each broken rule, screenshots land where documented."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page

from tests.support.browser import SCREENSHOTS, check_accessibility, screenshot

pytestmark = pytest.mark.browser

BROKEN = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<h2>办理结果</h2><h4>补充</h4>
<form><input type="text" name="comment"></form>
<p style="color:#bbb;background:#fff">灰色的小字说明</p>
</body></html>"""

FINE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>办理结果确认</title></head><body>
<main><h1>办理结果确认</h1><h2>补充意见</h2>
<form><label for="c">补充意见</label><input id="c" type="text" name="comment"></form>
<p style="color:#222;background:#fff">说明文字</p></main>
</body></html>"""


async def test_axe_names_every_broken_rule(new_page: Callable[..., Awaitable[Page]]) -> None:
    page = await new_page()
    await page.set_content(BROKEN)
    with pytest.raises(pytest.fail.Exception) as failed:
        await check_accessibility(page)
    report = str(failed.value)
    for rule in ("label", "page-has-heading-one", "heading-order", "color-contrast", "document-title", "html-has-lang"):
        assert f"\n  {rule} (" in report, (rule, report)
    assert "at input" in report  # the target selector of the unlabelled input

    await page.set_content(FINE)
    await check_accessibility(page)


async def test_screenshot_lands_in_the_tests_folder(
    new_page: Callable[..., Awaitable[Page]], request: pytest.FixtureRequest
) -> None:
    page = await new_page()
    await page.set_content(FINE)
    first, second = await screenshot(page, "一"), await screenshot(page, "second shot")
    folder = SCREENSHOTS / request.node.name
    assert (first.parent, first.name) == (folder, "01-一.png")
    assert (second.parent, second.name) == (folder, "02-second_shot.png")
    assert first.read_bytes().startswith(b"\x89PNG")
