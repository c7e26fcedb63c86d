"""A bad rating accepted while Temporal is down becomes a case once Temporal is back (outbox relay)."""

from __future__ import annotations

import asyncio

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models import search_attributes
from models.db import Database
from models.outbox import OutboxEntry
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.db import case_events, case_row
from tests.support.http import bad_rating
from tests.support.services import api_client
from tests.support.settings import free_port
from tests.support.waiting import eventually
from worker import run_worker


async def test_rating_accepted_while_temporal_down_becomes_case_after_start(
    settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    port = free_port()
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}"})

    async with api_client(down, db, TemporalConnection(down)) as api:
        response = await api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]
    assert (await case_row(db, case_id)).workflow_started_at is None

    # The real worker process logic, started before Temporal: it waits, then relays the outbox.
    stop = asyncio.Event()
    worker_task = asyncio.create_task(run_worker(down, stop))
    await asyncio.sleep(0.5)
    env = await WorkflowEnvironment.start_local(
        port=port,
        data_converter=pydantic_data_converter,
        dev_server_existing_path=settings.temporal_cli_path,
        dev_server_log_level="error",
        search_attributes=search_attributes.ALL,
    )
    try:
        started = await eventually(lambda: _started(db, case_id), timeout=60)
        assert started
        async with db.session() as session:
            outbox = await session.get(OutboxEntry, 1)
            assert outbox is not None and outbox.dispatched_at is not None
        assert [e.action for e in await case_events(db, case_id)] == ["opened"]
        workflow_id = (await case_row(db, case_id)).workflow_id
        description = await env.client.get_workflow_handle(workflow_id).describe()
        assert description.workflow_type == "CaseWorkflow"
    finally:
        stop.set()
        await asyncio.wait_for(worker_task, timeout=30)
        await env.shutdown()


async def _started(db: Database, case_id: int) -> bool:
    return (await case_row(db, case_id)).workflow_started_at is not None
