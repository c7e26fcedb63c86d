"""Browser tests: a live server on a real port, Debian's Chromium driven by Playwright, screenshots, axe-core.

Chromium is Debian's (`/usr/bin/chromium`, or `HCP_CHROMIUM`), installed with `fonts-noto-cjk` by
`make test`; Playwright's own browser download is never used. axe-core comes from the installed
axe-playwright-python package and is injected into the page, so nothing is fetched from outside.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, Playwright, ViewportSize

from config import PROJECT_ROOT
from runtime.mail_sink import MailSink, message_text
from runtime.seed import DemoCredentials
from tests.openapi_conformance import CONFORMANCE
from tests.pii_watch import WATCH
from tests.support.http import RATER, login
from tests.support.http_case import TO_FEEDBACK, open_case, take_steps
from tests.support.waiting import delivered

CHROMIUM_PATH = os.environ.get("HCP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# HCP_BROWSER_HEADED=1 shows the window (needs a display); HCP_BROWSER_SLOWMO=<ms> slows every action.
HEADED = os.environ.get("HCP_BROWSER_HEADED", "") not in ("", "0")
SLOW_MO_MS = float(os.environ.get("HCP_BROWSER_SLOWMO", "300" if HEADED else "0"))

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"


# --- the browser -------------------------------------------------------------------------------


def chromium_executable() -> str:
    """The Chromium to drive; fails the test (never skips it) when it is not installed."""
    path = Path(CHROMIUM_PATH)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {path}. Run `make test` (its browser-deps target installs Debian's "
            "chromium and fonts-noto-cjk), or point HCP_CHROMIUM at a Chromium binary.",
            pytrace=False,
        )
    return str(path)


async def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless unless HCP_BROWSER_HEADED is set."""
    args = [arg for arg in CHROMIUM_ARGS if not (HEADED and arg == "--headless")]
    return await playwright.chromium.launch(
        executable_path=chromium_executable(), args=args, headless=not HEADED, slow_mo=SLOW_MO_MS
    )


@dataclass
class Personas:
    """One browser context per persona (cookies and storage isolated between them), closed together."""

    browser: Browser
    test_name: str
    contexts: dict[str, BrowserContext] = field(default_factory=dict)

    async def context(self, persona: str = "visitor", viewport: ViewportSize = DESKTOP) -> BrowserContext:
        """The persona's context, made on first use with the viewport given then (zh-CN, China time)."""
        if persona not in self.contexts:
            self.contexts[persona] = await self.browser.new_context(
                viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai", color_scheme="light"
            )
        return self.contexts[persona]

    async def new_page(self, persona: str = "visitor", viewport: ViewportSize = DESKTOP) -> Page:
        """A new tab in the persona's context."""
        page = await (await self.context(persona, viewport)).new_page()
        _SHOTS_OF_PAGE[page] = self.test_name
        return page

    async def close(self) -> None:
        for context in self.contexts.values():
            for page in context.pages:
                _SHOTS_OF_PAGE.pop(page, None)
            await context.close()
        self.contexts.clear()


# --- screenshots -------------------------------------------------------------------------------

_SHOTS_OF_PAGE: dict[Page, str] = {}
_SHOT_COUNT: dict[str, int] = {}


def screenshot_dir(test_name: str) -> Path:
    """test-artifacts/screenshots/<test name>/, the test name made safe for a path."""
    return SCREENSHOTS / re.sub(r"[^\w.\-\[\]]+", "_", test_name)


def start_screenshots(test_name: str) -> None:
    """A test's screenshots start afresh: its folder emptied, numbering from 01."""
    shutil.rmtree(screenshot_dir(test_name), ignore_errors=True)
    _SHOT_COUNT[test_name] = 0


async def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG in test-artifacts/screenshots/<test name>/<nn>-<name>.png; returns its path."""
    test_name = _SHOTS_OF_PAGE.get(page, "unnamed")
    _SHOT_COUNT[test_name] = _SHOT_COUNT.get(test_name, 0) + 1
    safe_name = re.sub(r"[^\w.\-]+", "_", name)
    path = screenshot_dir(test_name) / f"{_SHOT_COUNT[test_name]:02d}-{safe_name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    return path


# --- accessibility -----------------------------------------------------------------------------

# WCAG 2.x A and AA, plus the best-practice rules on headings (axe-core, run inside the page).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE_EXTRA_RULES = ["page-has-heading-one", "heading-order"]
# The rules every page must have run, so a rule set that silently dropped one is noticed.
AXE_REQUIRED_RULES = {
    "label",
    "page-has-heading-one",
    "heading-order",
    "color-contrast",
    "document-title",
    "html-has-lang",
}

_AXE = Axe()


def axe_options(disabled: tuple[str, ...] = ()) -> dict[str, Any]:
    rules: dict[str, dict[str, bool]] = {rule: {"enabled": True} for rule in AXE_EXTRA_RULES}
    rules.update({rule: {"enabled": False} for rule in disabled})
    return {
        "runOnly": {"type": "tag", "values": AXE_TAGS},
        "rules": rules,
        "resultTypes": ["violations"],
    }


def describe_violations(violations: list[dict[str, Any]]) -> list[str]:
    """One line per offending element: rule id, impact, target selector, help, and what to fix."""
    lines = []
    for violation in violations:
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node.get("target", []))
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(
                f"{violation['id']} ({violation.get('impact') or node.get('impact')}) at {target}: "
                f"{violation['help']}. {summary}"
            )
    return lines


async def check_accessibility(page: Page, disabled: tuple[str, ...] = ()) -> None:
    """Run axe-core on the page as it is now; fail listing every violation. `disabled`: rule ids to skip."""
    results = (await _AXE.run(page, options=axe_options(disabled))).response
    ran = {
        rule["id"] for key in ("passes", "violations", "incomplete", "inapplicable") for rule in results.get(key, [])
    }
    # resultTypes trims the other lists to one node each but still names every rule that ran.
    missing = AXE_REQUIRED_RULES - set(disabled) - ran
    assert not missing, f"axe-core did not run the rules {sorted(missing)} on {page.url}"
    lines = describe_violations(results["violations"])
    if lines:
        pytest.fail(f"accessibility violations on {page.url}:\n  " + "\n  ".join(lines), pytrace=False)


# --- the live server ---------------------------------------------------------------------------


@contextmanager
def listening_socket() -> Iterator[socket.socket]:
    """A socket bound to a free 127.0.0.1 port: the URL is known before the app is built, and no race for it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn in the test's event loop; Ctrl-C stays pytest's."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class LiveServer:
    """The app served over HTTP on 127.0.0.1, and an HTTP client to it."""

    url: str
    app: FastAPI
    api: httpx.AsyncClient


@asynccontextmanager
async def serve(app: FastAPI, sock: socket.socket) -> AsyncIterator[LiveServer]:
    """Serve the app with uvicorn on an already bound socket, as a task of the running loop."""
    # log_config=None: uvicorn leaves logging as pytest set it, its records reach the run-wide PII watch.
    # Its access log (raw paths, rater tokens included) stays off: hcp.access logs route templates.
    config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the live server stopped while starting")
            await asyncio.sleep(0.02)
        url = url_of(sock)
        hooks = {"response": [WATCH.response_hook, CONFORMANCE.hook(app)]}
        async with httpx.AsyncClient(base_url=url, event_hooks=hooks, timeout=30) as api:
            yield LiveServer(url, app, api)
    finally:
        server.should_exit = True
        await task


# --- cases to look at --------------------------------------------------------------------------


async def rater_link_of_new_case(server: LiveServer, demo: DemoCredentials, mailbox: MailSink) -> str:
    """A new case taken by the unit's staff through feedback; the one-time link the rater got by email."""
    staff = await login(server.api, "scj_staff", demo.passwords["scj_staff"])
    case_id = await open_case(server.api, demo, staff)
    await take_steps(server.api, case_id, staff, TO_FEEDBACK)
    mail = (await delivered(mailbox, RATER["email"]))[0]
    found = re.search(r"(https?://\S+/r/[A-Za-z0-9_-]+)", message_text(mail))
    assert found, message_text(mail)
    assert found.group(1).startswith(server.url + "/r/"), (found.group(1), server.url)
    return found.group(1)
