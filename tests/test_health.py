"""The probes: /readyz names the dependency that is down, hung or behind, and never hangs itself.

On real parts: the Temporal dev server, a closed port and a port that accepts and never answers,
a private PostgreSQL cluster stopped in the test (tests/support/pg_cluster.py), databases one
migration behind, never migrated and migrated by newer code; and the worker's own probe listener
(runtime/worker_health.py) through start-up, polling and shutdown.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from temporalio.testing import WorkflowEnvironment

from config import Settings
from migrations import alembic_config
from models.db import Database
from runtime.readiness import PROBE_TIMEOUT_SECONDS, migration_heads
from runtime.temporal import TemporalConnection
from tests.support.pg_cluster import migrated_cluster, requires_server_binaries
from tests.support.services import api_client
from tests.support.settings import free_port, make_settings
from tests.support.waiting import eventually
from worker import run_worker

READY = {"database": "ok", "temporal": "ok", "migrations": "ok"}
# A probe that waits on a hung dependency answers within its timeout and a little.
PROBE_BUDGET = PROBE_TIMEOUT_SECONDS + 1.5
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections into its backlog and never says a word: a hung dependency."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


async def _probe(api: httpx.AsyncClient) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    response = await api.get("/readyz")
    return response.status_code, response.json(), time.monotonic() - started


def _code_head() -> str:
    (head,) = migration_heads().heads
    return head


async def test_ready_on_a_healthy_stack(dev_server: WorkflowEnvironment, settings: Settings, db: Database) -> None:
    async with api_client(settings, db, TemporalConnection(settings, client=dev_server.client)) as api:
        status, body, _ = await _probe(api)
        assert (status, body) == (200, {"status": "ready", "checks": READY})
        assert (await api.get("/healthz")).json() == {"status": "ok"}


@SQLITE
async def test_unready_naming_temporal_unreachable_or_hung(settings: Settings, db: Database, silent_port: int) -> None:
    closed = free_port()
    for port, state in ((closed, "unreachable"), (silent_port, "timeout")):
        temporal = TemporalConnection(settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}"}))
        async with api_client(settings, db, temporal) as api:
            status, body, took = await _probe(api)
            assert (status, body) == (503, {"status": "unready", "checks": {**READY, "temporal": state}})
            assert took < PROBE_BUDGET, f"the probe took {took:.1f} s on a {state} Temporal"
            assert str(port) not in str(body) and "127.0.0.1" not in str(body)
            # Liveness says nothing about dependencies.
            assert (await api.get("/healthz")).status_code == 200


@SQLITE
async def test_migrations_behind_not_migrated_and_ahead(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, tmp_path: Path
) -> None:
    temporal = TemporalConnection(settings, client=dev_server.client)
    head = _code_head()
    async with api_client(settings, db, temporal) as api:
        command.downgrade(alembic_config(settings.sqlalchemy_url), "-1")
        behind = command_current(settings.sqlalchemy_url)
        assert behind != head
        status, body, _ = await _probe(api)
        assert (status, body["checks"]) == (503, {**READY, "migrations": f"behind: db {behind}, code {head}"})

        command.upgrade(alembic_config(settings.sqlalchemy_url), "head")
        assert (await _probe(api))[0] == 200

        # Newer code migrated the database (a rolling release): this older code keeps serving.
        engine = sa.create_engine(settings.sqlalchemy_url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        engine.dispose()
        status, body, _ = await _probe(api)
        assert (status, body["checks"]) == (200, {**READY, "migrations": f"ahead: db 9999, code {head}"})

    empty = make_settings(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path, 0)
    empty_db = Database(empty.async_sqlalchemy_url)
    try:
        async with api_client(empty, empty_db, temporal) as api:
            status, body, _ = await _probe(api)
            assert (status, body["checks"]) == (503, {**READY, "migrations": f"not migrated: code {head}"})
    finally:
        await empty_db.dispose()


def command_current(url: str) -> str:
    """The revision the database at url is at."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return str(revision)


@requires_server_binaries
async def test_unready_naming_the_database_when_it_stops_or_hangs(
    dev_server: WorkflowEnvironment, tmp_path: Path, silent_port: int
) -> None:
    temporal = TemporalConnection(Settings(), client=dev_server.client)
    head = _code_head()
    with migrated_cluster() as cluster:
        settings = make_settings(cluster.url, tmp_path, free_port())
        db = Database(settings.async_sqlalchemy_url)
        try:
            async with api_client(settings, db, temporal) as api:
                assert (await _probe(api))[:2] == (200, {"status": "ready", "checks": READY})

                # One migration behind on PostgreSQL.
                await asyncio.to_thread(command.downgrade, alembic_config(settings.sqlalchemy_url), "-1")
                behind = command_current(settings.sqlalchemy_url)
                status, body, _ = await _probe(api)
                assert (status, body["checks"]) == (503, {**READY, "migrations": f"behind: db {behind}, code {head}"})
                await asyncio.to_thread(command.upgrade, alembic_config(settings.sqlalchemy_url), "head")

                await asyncio.to_thread(cluster.stop, "fast")
                status, body, took = await _probe(api)
                assert (status, body) == (
                    503,
                    {
                        "status": "unready",
                        "checks": {"database": "unreachable", "temporal": "ok", "migrations": "unknown"},
                    },
                )
                assert took < PROBE_BUDGET
                assert str(cluster.port) not in str(body) and "postgres" not in str(body)

                await asyncio.to_thread(cluster.start)

                async def ready_again() -> bool:
                    return (await _probe(api))[0] == 200

                await eventually(ready_again, timeout=15)
        finally:
            await db.dispose()

    hung = make_settings(f"postgresql+psycopg://postgres@127.0.0.1:{silent_port}/hcp", tmp_path, 0)
    hung_db = Database(hung.async_sqlalchemy_url)
    try:
        async with api_client(hung, hung_db, temporal) as api:
            status, body, took = await _probe(api)
            assert (status, body["checks"]) == (503, {"database": "timeout", "temporal": "ok", "migrations": "unknown"})
            assert took < PROBE_BUDGET, f"the probe took {took:.1f} s on a hung database"
    finally:
        await hung_db.dispose()


@SQLITE
async def test_the_worker_probes_through_start_polling_and_stop(
    dev_server: WorkflowEnvironment, settings: Settings
) -> None:
    port = free_port()
    target = dev_server.client.service_client.config.target_host
    # Temporal not there yet: the worker waits for it, alive but not ready.
    waiting = settings.model_copy(update={"worker_health_port": port, "temporal_address": f"127.0.0.1:{free_port()}"})
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(waiting, stop))
    probes = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=PROBE_BUDGET)
    try:

        async def answering() -> httpx.Response | None:
            try:
                return await probes.get("/healthz")
            except httpx.ConnectError:
                return None

        assert (await eventually(answering)).json() == {"status": "ok"}
        starting = await probes.get("/readyz")
        assert starting.status_code == 503
        assert starting.json() == {
            "status": "unready",
            "checks": {"worker": "starting", "database": "ok", "migrations": "ok"},
        }
        assert (await probes.post("/readyz")).status_code == 405
        assert (await probes.get("/metrics")).status_code == 404
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        with pytest.raises(httpx.ConnectError):
            await probes.get("/healthz")

        # With Temporal there: ready once it polls.
        polling = settings.model_copy(update={"worker_health_port": port, "temporal_address": target})
        stop = asyncio.Event()
        task = asyncio.create_task(run_worker(polling, stop))

        async def ready() -> httpx.Response | None:
            try:
                response = await probes.get("/readyz")
            except httpx.ConnectError:
                return None
            return response if response.status_code == 200 else None

        answer = await eventually(ready, timeout=30)
        assert answer.json() == {"status": "ready", "checks": {"worker": "ok", "database": "ok", "migrations": "ok"}}
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    finally:
        stop.set()
        if not task.done():
            await asyncio.wait_for(task, timeout=30)
        await probes.aclose()
