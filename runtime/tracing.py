"""OpenTelemetry tracing of the API and the worker, off unless ``HCP_OTEL_ENDPOINT`` is set.

Off, nothing is set up: no provider, no exporter, no Temporal interceptor, no HTTP middleware, and the
exporter's module is not even imported, so nothing tries to connect anywhere. On, each process has its
own tracer provider (``service.name`` ``hcp-api`` or ``hcp-worker``) and the Temporal SDK's
``TracingInterceptor`` on its client, which the worker inherits: a rating's HTTP request, the case
workflow it starts, the workflow's run and its activities are one trace. Spans carry ids, route
templates and workflow and activity types, never a rater's contact or a link's token.

``HCP_OTEL_ENDPOINT`` is an OTLP/HTTP traces URL (``http://collector:4318/v1/traces``), or ``console``
to print spans to stderr. The SDK's own variables apply as usual (``OTEL_EXPORTER_OTLP_HEADERS`` for a
collector's credentials, ``OTEL_TRACES_SAMPLER`` to sample).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Tracer
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from config import Settings

log = logging.getLogger(__name__)

CONSOLE = "console"


class Tracing:
    """One process's tracing: a tracer and the Temporal interceptor, or nothing at all when off."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.tracer: Tracer | None = provider.get_tracer("hcp") if provider is not None else None

    @classmethod
    def exporting_to(cls, exporter: SpanExporter, service: str) -> Tracing:
        """Tracing whose spans go to `exporter` in batches (tests pass an in-memory one)."""
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider)

    @property
    def on(self) -> bool:
        return self.tracer is not None

    def temporal_interceptors(self) -> Sequence[Interceptor]:
        """The client interceptors to connect with; the worker built on that client uses them too."""
        return [TracingInterceptor(self.tracer)] if self.tracer is not None else []

    def flush(self) -> None:
        """Send the spans still batched (before a process exits without running atexit hooks)."""
        if self.provider is not None:
            self.provider.force_flush()

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


OFF = Tracing()
_by_service: dict[tuple[str, str], Tracing] = {}


def tracing_for(settings: Settings, service: str) -> Tracing:
    """The process's tracing for `service` as the settings ask, made once (one provider, one exporter)."""
    endpoint = settings.otel_endpoint.strip()
    if not endpoint:
        return OFF
    key = (service, endpoint)
    if key not in _by_service:
        _by_service[key] = Tracing.exporting_to(_exporter(endpoint), service)
        log.info("tracing on: %s spans to %s", service, CONSOLE if endpoint == CONSOLE else "OTLP/HTTP")
    return _by_service[key]


def _exporter(endpoint: str) -> SpanExporter:
    if endpoint == CONSOLE:
        return ConsoleSpanExporter()
    # Imported only when tracing is on: the exporter and its HTTP session exist only then.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint)
