"""The process's Prometheus registry and the counters kept outside the API layer (docs/operations.md).

One registry per process: /metrics (api/metrics.py) serves it with the figures it reads from the
database at scrape time. Counters count in this process since it started; Prometheus's ``rate()``
and ``increase()`` make them comparable across restarts and processes.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# No *_created series beside each counter and histogram: Prometheus would store each as one more series.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)
# The process's CPU, memory and open files, and the interpreter's garbage collections.
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

RATINGS_RECEIVED = Counter(
    "hcp_ratings_received",
    "Ratings taken by this API process (single, batch, rater pages, devices), by channel, counted once committed",
    ["channel"],
    registry=REGISTRY,
)


def count_ratings_received(channels: Iterable[str]) -> None:
    """Count ratings just committed, one channel per rating a rater gave (a bundle's copies are not counted)."""
    for channel in channels:
        RATINGS_RECEIVED.labels(channel).inc()
