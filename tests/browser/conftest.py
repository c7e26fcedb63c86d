"""Fixtures of the browser tests: a live server on a real port and Debian's Chromium (tests/support/browser.py).

Each test module here sets `pytestmark = pytest.mark.browser`. They run on PostgreSQL only: the database is
not what they test.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Playwright, async_playwright
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config import Settings
from models.db import Database
from runtime.temporal import TemporalConnection
from tests.support.browser import (
    LiveServer,
    Personas,
    launch_chromium,
    listening_socket,
    serve,
    start_screenshots,
    url_of,
)
from tests.support.services import running_worker


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def live_socket() -> Iterator[socket.socket]:
    """The live server's socket, bound before the settings are made so they can name its URL."""
    with listening_socket() as sock:
        yield sock


@pytest.fixture
def settings(settings: Settings, live_socket: socket.socket) -> Settings:
    """The test settings, with links in mails and SMS pointing at the live server."""
    return settings.model_copy(update={"public_base_url": url_of(live_socket)})


@pytest_asyncio.fixture
async def live_server(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, live_socket: socket.socket
) -> AsyncIterator[LiveServer]:
    """The app (create_app) served by uvicorn on 127.0.0.1, with a worker on the shared Temporal dev server.

    `live_server.url` for the browser, `live_server.api` an httpx client to it (PII watch, OpenAPI check).
    """
    app = create_app(settings, db, TemporalConnection(settings, client=dev_server.client))
    async with running_worker(dev_server.client, settings, db), serve(app, live_socket) as server:
        yield server


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium(playwright: Playwright) -> AsyncIterator[Browser]:
    """One Debian Chromium for the session; a missing one fails the tests, saying to run `make test`."""
    browser = await launch_chromium(playwright)
    yield browser
    await browser.close()


@pytest_asyncio.fixture
async def personas(chromium: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Personas]:
    """Browser contexts by persona, fresh for each test: `await personas.new_page("rater", viewport=PHONE)`."""
    start_screenshots(request.node.name)
    people = Personas(chromium, request.node.name)
    yield people
    await people.close()


@pytest.fixture
def new_page(personas: Personas) -> Callable[..., Awaitable[Page]]:
    """`page = await new_page()`, or `await new_page("rater", PHONE)`: a tab in that persona's context."""
    return personas.new_page
