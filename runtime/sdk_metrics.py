"""The Temporal SDK's own metrics from the worker, in the Prometheus format, when ``HCP_WORKER_METRICS_ADDRESS`` is set.

The SDK's core serves them itself (``temporal_`` series: polls, task latencies, slots, sticky cache,
requests to the server) at ``http://<address>/metrics``; the worker's client is connected with this
runtime, so its worker reports there. Unset, the SDK's default runtime is used and nothing listens.
"""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from config import Settings

_runtimes: dict[str, Runtime] = {}


def worker_runtime(settings: Settings) -> Runtime | None:
    """The runtime serving SDK metrics at the configured address (made once per address), or None when off.

    Raises when the address cannot be bound (taken, or not ``host:port``): a worker asked to serve
    metrics should not start without them.
    """
    address = settings.worker_metrics_address.strip()
    if not address:
        return None
    if address not in _runtimes:
        telemetry = TelemetryConfig(
            # Counters end in _total and durations are in seconds, as Prometheus names them elsewhere.
            metrics=PrometheusConfig(bind_address=address, counters_total_suffix=True, durations_as_seconds=True),
        )
        _runtimes[address] = Runtime(telemetry=telemetry)
    return _runtimes[address]
