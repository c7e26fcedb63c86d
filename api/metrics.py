"""Prometheus metrics of the API: ``GET /metrics`` and the middleware that counts every request.

Every series is listed with its labels in docs/operations.md ("Metrics, logs and traces"). Requests
are labelled by the route's template (``/r/{token}``), never the raw path: paths hold rater tokens.
The case, notice and push figures are read from the database when scraped, at most once per
``HCP_METRICS_CACHE_SECONDS`` however many scrapes come (one read at a time; the others wait for it
and share it).

Who may read it: with ``HCP_METRICS_TOKEN`` set, whoever sends it as ``Authorization: Bearer``;
without, only a caller on this machine's loopback whose request no proxy relayed (no
``Forwarded``/``X-Forwarded-For``/``X-Real-IP``): a proxy on the same host would otherwise make
every outside caller look local. It is left out of the OpenAPI schema: it is for Prometheus, not
for the business systems the schema describes, and answers in Prometheus's text format.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Message, Receive, Scope, Send

from api.errors import error_content
from api.middleware import HttpMiddleware, route_template
from config import Settings
from models.db import Database, utcnow
from models.operations_figures import OperationsFigures, read_operations_figures
from runtime.metrics import REGISTRY

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# Seconds: the rater's pages answer in milliseconds, a case step waits up to 5 s, an export can take longer.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Any other method (a scanner's) is counted as "other": a label value per invented method would never end.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A read slower than this answers the scrape without the figures (hcp_figures_up 0) rather than hang it.
FIGURES_READ_TIMEOUT_SECONDS = 5.0
_FORWARDING_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})

HTTP_REQUESTS = Counter(
    "hcp_http_requests",
    "HTTP requests answered, by method, route template and status class",
    ["method", "route", "status_class"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "hcp_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_UNHANDLED = Counter(
    "hcp_http_unhandled_errors",
    "Exceptions no handler answered (each a 500 with a request id in the log), by route template",
    ["route"],
    registry=REGISTRY,
)


def status_class(status: int) -> str:
    """``2xx`` … ``5xx``; ``none`` when the client went away before any answer."""
    return f"{status // 100}xx" if 100 <= status < 600 else "none"


class RequestMetricsMiddleware(HttpMiddleware):
    """Counts and times every HTTP request; sits inside the 500 handler so it sees the exceptions it answers."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            HTTP_UNHANDLED.labels(route_template(scope)).inc()
            status = status or 500  # what UnexpectedErrorMiddleware answers
            raise
        finally:
            route = route_template(scope)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            HTTP_REQUESTS.labels(method, route, status_class(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)


class FiguresCache:
    """The database figures, read at most once per `max_age` seconds; a failed read is not retried sooner."""

    def __init__(self, db: Database, max_age: float) -> None:
        self._db = db
        self._max_age = max_age
        self._lock = asyncio.Lock()
        self._read_at = -math.inf
        self.figures: OperationsFigures | None = None
        self.ok = False
        self.read_seconds = 0.0
        self.reads = 0  # how many times the database was asked

    def _fresh(self) -> bool:
        return time.monotonic() - self._read_at < self._max_age

    async def current(self) -> FiguresCache:
        """Read again if the figures are older than the cache allows; concurrent callers share one read."""
        if self._fresh():
            return self
        async with self._lock:
            if self._fresh():
                return self
            started = time.perf_counter()
            self.reads += 1
            try:
                self.figures = await asyncio.wait_for(self._read(), FIGURES_READ_TIMEOUT_SECONDS)
                self.ok = True
            except Exception as exc:  # noqa: BLE001 - the scrape still answers, with hcp_figures_up 0
                # The class only: a driver's message can quote a statement's parameters.
                log.warning("metrics: reading the case, notice and push figures failed: %s", type(exc).__name__)
                self.figures, self.ok = None, False
            self.read_seconds = time.perf_counter() - started
            self._read_at = time.monotonic()
        return self

    async def _read(self) -> OperationsFigures:
        async with self._db.session() as session:
            return await read_operations_figures(session, utcnow())


class FiguresCollector(Collector):
    """The figures of one scrape as gauges."""

    def __init__(self, cache: FiguresCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        cache = self._cache
        yield GaugeMetricFamily(
            "hcp_figures_up", "1 if the last read of the figures from the database succeeded, else 0", int(cache.ok)
        )
        yield GaugeMetricFamily(
            "hcp_figures_read_seconds", "How long the last read of the figures took", cache.read_seconds
        )
        figures = cache.figures
        if figures is None:
            return
        age = (utcnow() - figures.read_at).total_seconds()
        yield GaugeMetricFamily("hcp_figures_age_seconds", "How old the figures below are (the cache)", age)
        yield _labelled("hcp_cases_open", "Open cases by stage", "stage", figures.open_cases)
        yield _labelled("hcp_cases_overdue", "Open overdue cases by escalation rung", "rung", figures.overdue_cases)
        yield _labelled(
            "hcp_notices",
            "Notices not yet sent: waiting, retrying after a failure, being sent, failed for good",
            "state",
            figures.notices,
        )
        yield GaugeMetricFamily(
            "hcp_notice_send_lag_seconds",
            "How long the longest-waiting notice that is due has waited to be sent; 0 if none waits",
            figures.notice_lag_seconds,
        )
        yield _labelled(
            "hcp_upstream_pushes",
            "Upstream pushes not yet delivered: waiting, retrying after a failure, being sent, dead letters",
            "state",
            figures.pushes,
        )


def _labelled(name: str, documentation: str, label: str, values: dict[str, int] | dict[int, int]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        gauge.add_metric([str(key)], value)
    return gauge


def scrape_refusal(request: Request, settings: Settings) -> JSONResponse | None:
    """Why this caller may not read the metrics (401 or 403), or None when it may."""
    token = settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        scheme, _, credential = sent.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), token.encode()):
            return None
        return JSONResponse(
            error_content("not_authenticated", "需要监控令牌（Authorization: Bearer）"),
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    client = request.client.host if request.client else ""
    relayed = any(name in _FORWARDING_HEADERS for name, _ in request.scope["headers"])
    if _is_loopback(client) and not relayed:
        return None
    return JSONResponse(
        error_content("forbidden", "未设置监控令牌时，仅允许本机直接访问 /metrics"),
        status_code=403,
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


router = APIRouter(include_in_schema=False)


@router.get(METRICS_PATH)
async def metrics(request: Request) -> Response:
    """The process's series and the database figures, in Prometheus's text format."""
    refusal = scrape_refusal(request, request.app.state.settings)
    if refusal is not None:
        return refusal
    cache: FiguresCache = await request.app.state.metrics_figures.current()
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(FiguresCollector(cache))
    body = generate_latest(REGISTRY) + generate_latest(scrape)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
