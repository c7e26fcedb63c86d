"""Connecting to Temporal and starting case workflows, shared by the API fast path and the outbox relay."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter

from config import Settings
from models.case_types import CaseSnapshot, CaseWorkflowInput, workflow_id_for_rating
from workflows.case import CaseWorkflow

log = logging.getLogger(__name__)


async def connect(settings: Settings) -> Client:
    """A client with the pydantic data converter (the worker uses the same one)."""
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
    )


class TemporalConnection:
    """A lazily made, shared client. Connecting is retried on the next call if Temporal was down."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await connect(self._settings)
        return self._client


async def start_case_workflow(
    client: Client, inp: CaseWorkflowInput, task_queue: str
) -> WorkflowHandle[CaseWorkflow, CaseSnapshot]:
    """Start the case workflow of a bad rating; if it already runs, return that one ("use existing")."""
    return await client.start_workflow(
        CaseWorkflow.run,
        inp,
        id=workflow_id_for_rating(inp.rating_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
