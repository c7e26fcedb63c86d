"""Tracing: on, a rating's request, the case workflow it starts and the workflow's run are one trace; off, no span.

Both run the production wiring (runtime.temporal.connect, create_app, build_worker) on the Temporal dev
server; spans go to an in-memory exporter instead of a collector.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.observability import TracingMiddleware
from config import Settings
from models.case.vocabulary import workflow_id_for_rating
from models.db import Database
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection, connect
from runtime.tracing import OFF, Tracing, tracing_for
from tests.pii_watch import PII_NEEDLES
from tests.support.http import bad_rating
from tests.support.services import running_worker
from tests.support.waiting import eventually
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def on_dev_server(settings: Settings, dev_server: WorkflowEnvironment) -> Settings:
    return settings.model_copy(update={"temporal_address": dev_server.client.service_client.config.target_host})


async def rate_and_run(app: object, client: Client, settings: Settings, db: Database, demo: DemoCredentials) -> str:
    """A bad rating through the API, its case started at once and run by the worker until an activity ran."""
    async with (
        running_worker(client, settings, db),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as api,  # type: ignore[arg-type]
    ):
        created = await api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
        assert created.status_code == 201, created.text
        workflow_id = workflow_id_for_rating(created.json()["rating_id"], settings.workflow_id_prefix)
        handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id)

        async def an_activity_done() -> bool:
            events = {e.event_type async for e in handle.fetch_history_events()}
            # The case's first steps are local activities: each leaves a marker.
            return bool(events & {EventType.EVENT_TYPE_MARKER_RECORDED, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED})

        await eventually(an_activity_done, timeout=30)
    return workflow_id


def by_name(spans: Sequence[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


async def test_tracing_on_makes_one_trace_from_the_request_to_the_activities(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    settings = on_dev_server(settings, dev_server)
    exporter = InMemorySpanExporter()
    tracing = Tracing.exporting_to(exporter, "hcp-test")
    assert tracing.tracer is not None
    client = await connect(settings, tracing=tracing)
    app = TracingMiddleware(create_app(settings, db, TemporalConnection(settings, client)), tracing.tracer)
    await rate_and_run(app, client, settings, db, demo)
    tracing.flush()
    spans = exporter.get_finished_spans()

    [request] = by_name(spans, "POST /api/v1/ratings")
    assert request.kind == SpanKind.SERVER
    assert request.attributes is not None and request.attributes["http.route"] == "/api/v1/ratings"
    assert request.attributes["http.response.status_code"] == 201
    [start] = by_name(spans, "StartWorkflow:CaseWorkflow")
    assert start.parent is not None and start.parent.span_id == request.context.span_id
    runs = by_name(spans, "RunWorkflow:CaseWorkflow")
    activities = by_name(spans, "RunActivity:")
    assert runs and activities
    trace_ids = {span.context.trace_id for span in [request, start, *runs, *activities]}
    assert trace_ids == {request.context.trace_id}
    # Names, ids and templates only: no rater contact, no comment.
    exported = json.dumps([json.loads(span.to_json()) for span in spans], ensure_ascii=False)
    assert not [needle for needle in [*PII_NEEDLES, "窗口排队两个小时"] if needle in exported]
    tracing.shutdown()


async def test_tracing_off_adds_nothing_and_records_no_span(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    settings = on_dev_server(settings, dev_server)
    assert settings.otel_endpoint == ""
    # A recording provider as the process's global one: anything tracing by default would land here.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another test set a global tracer provider first"

    assert tracing_for(settings, "hcp-api") is OFF and tracing_for(settings, "hcp-worker") is OFF
    client = await connect(settings, service="hcp-worker")
    assert list(client.config()["interceptors"]) == []
    app = create_app(settings, db, TemporalConnection(settings, client))
    assert TracingMiddleware not in [getattr(m, "cls", None) for m in app.user_middleware]
    workflow_id = await rate_and_run(app, client, settings, db, demo)

    provider.force_flush()
    assert [span.name for span in exporter.get_finished_spans()] == []
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert "_tracer-data" not in started.header.fields  # no trace context travels with the workflow either
