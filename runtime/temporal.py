"""Connecting to Temporal and starting case workflows, shared by the API fast path and the outbox relay."""

from __future__ import annotations

import asyncio
import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from models import search_attributes
from models.case.vocabulary import CaseSnapshot, CaseWorkflowInput
from runtime.tracing import Tracing, tracing_for
from workflows.case import CaseWorkflow

log = logging.getLogger(__name__)


async def connect(
    settings: Settings, *, service: str = "hcp-api", tracing: Tracing | None = None, runtime: Runtime | None = None
) -> Client:
    """A client with the pydantic data converter (the worker uses the same one).

    Traced as `service` when tracing is on (runtime/tracing.py); `runtime` carries the worker's SDK
    metrics (runtime/sdk_metrics.py).
    """
    tracing = tracing or tracing_for(settings, service)
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=tracing.temporal_interceptors(),
        runtime=runtime,
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
    client: Client, workflow_id: str, inp: CaseWorkflowInput, task_queue: str
) -> WorkflowHandle[CaseWorkflow, CaseSnapshot]:
    """Start the case workflow of a bad rating; if it already runs, return that one ("use existing")."""
    return await client.start_workflow(
        CaseWorkflow.run,
        inp,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the case workflow's search attributes on the namespace if missing. Returns those added.

    Needs operator rights (dev server, test server, self-hosted cluster); on Temporal Cloud create
    them in the namespace settings instead.
    """
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError as exc:
        # The time-skipping test server cannot list, only add.
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in search_attributes.ALL
        if key.name not in existing
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
