"""Metrics and tracing of the API, installed by the app factory in one call (docs/operations.md).

The metrics middleware always runs (a counter and a histogram per request cost microseconds). The
tracing middleware is added only when tracing is on (runtime/tracing.py): off, a request meets no
tracing code at all.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import FiguresCache, RequestMetricsMiddleware
from api.metrics import router as metrics_router
from api.middleware import HttpMiddleware, request_id_of, route_template
from config import Settings
from models.db import Database
from runtime.tracing import tracing_for

# FastAPI's own OpenTelemetry instrumentation, off whatever provider a process installs globally: its spans
# record the raw path and query (url.path: the rater's token in /r/{token}) and its log records exception
# messages. The spans below record the route template instead.
FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


class TracingMiddleware(HttpMiddleware):
    """One server span per request, named by method and route template, child of a caller's ``traceparent``.

    Its attributes are the method, the route template, the status and the request id: never the raw
    path or query (rater tokens), nor any header or body. A Temporal call made while answering (a case
    started, a step sent) is a child span through the Temporal client's interceptor.
    """

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        super().__init__(app)
        self._tracer = tracer

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in (b"traceparent", b"tracestate")
        }
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        with self._tracer.start_as_current_span(
            method, context=propagate.extract(carrier), kind=SpanKind.SERVER, record_exception=False
        ) as span:
            try:
                await self.app(scope, receive, send_noting_status)
            except Exception as exc:
                # The class only: an exception's message or traceback can quote what a rater sent.
                span.set_attribute("exception.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                status = status or 500
                raise
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("hcp.request_id", request_id_of(scope))
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def install_observability(app: FastAPI, settings: Settings, db: Database) -> None:
    """/metrics, the request metrics and, when tracing is on, request spans.

    Call it between the body limit and the 500 handler: the middlewares added here then see every
    request the app answers, refused ones included, and the exceptions the 500 handler turns into answers.
    """
    app.state.metrics_figures = FiguresCache(db, settings.metrics_cache_seconds)
    app.include_router(metrics_router)
    app.add_middleware(RequestMetricsMiddleware)
    tracing = tracing_for(settings, "hcp-api")
    if tracing.tracer is not None:
        app.add_middleware(TracingMiddleware, tracer=tracing.tracer)
