"""The Temporal worker: runs the case workflow, its activities, and the outbox, notice and upstream relays.

It also runs the rating sweep (workflows/rating_sweep.py) and the retention job (workflows/retention.py),
and at start creates or updates the Temporal Schedules that start them (runtime/rating_sweep.py,
runtime/retention.py).
On PostgreSQL it refreshes the indicator rollup every HCP_INDICATOR_ROLLUP_REFRESH_SECONDS
(runtime/refresh_indicators.py).

    python worker.py

Stops gracefully on SIGTERM or Ctrl-C: polling stops, running activities and the relays' sends in hand
finish within HCP_WORKER_SHUTDOWN_GRACE_SECONDS, then it exits. With HCP_WORKER_HEALTH_PORT set it
serves /healthz and /readyz (runtime/worker_health.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities import CaseActivities, build_activities
from config import Settings, get_settings
from models.db import Database
from models.pii import configure_pii_keys
from runtime.logs import configure_logging
from runtime.notice_relay import NoticeRelay
from runtime.rating_sweep import ensure_sweep_schedule
from runtime.refresh_indicators import RollupRefresher, runs_here
from runtime.relay import OutboxRelay
from runtime.retention import ensure_retention_schedule
from runtime.sdk_metrics import worker_runtime
from runtime.stopping import finish_within, sleep_unless_stopped
from runtime.temporal import connect, ensure_search_attributes
from runtime.tracing import tracing_for
from runtime.upstream_relay import UpstreamRelay
from runtime.worker_health import WorkerProbe, worker_probes
from runtime.workflow_runner import workflow_runner
from workflows.case import CaseWorkflow
from workflows.rating_sweep import RatingSweepWorkflow
from workflows.retention import RetentionWorkflow
from workflows.root_cause import RootCauseWorkflow

log = logging.getLogger("hcp.worker")

WORKFLOWS: list[type] = [CaseWorkflow, RatingSweepWorkflow, RetentionWorkflow, RootCauseWorkflow]


def build_worker(client: Client, settings: Settings, activities: CaseActivities, **options: Any) -> Worker:
    """The worker with every workflow and activity registered explicitly (options: extra Worker arguments)."""
    registered: list[Callable[..., Any]] = activities.activities
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=registered,
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace_seconds),
        **options,
    )


async def connect_with_retry(settings: Settings, stop: asyncio.Event) -> Client | None:
    """Wait for Temporal to be reachable; None if asked to stop first."""
    delay = 1.0
    runtime = worker_runtime(settings)  # outside the retries: a metrics address that cannot be bound stops the start
    while not stop.is_set():
        try:
            return await connect(settings, service="hcp-worker", runtime=runtime)
        except Exception as exc:  # noqa: BLE001 - keep waiting for the server
            log.warning("Temporal at %s not reachable (%s); retrying in %.0fs", settings.temporal_address, exc, delay)
            await sleep_unless_stopped(stop, delay)
            delay = min(delay * 2, 15)
    return None


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run the worker and its relays until stop is set, then drain them; the probes answer throughout."""
    db = Database(settings.async_sqlalchemy_url)
    probe = WorkerProbe(db)
    async with worker_probes(probe, settings.worker_health_host, settings.worker_health_port):
        try:
            client = await connect_with_retry(settings, stop)
            if client is not None:
                await _serve(client, settings, stop, db, probe)
        finally:
            await db.dispose()
    log.info("worker stopped")


async def _serve(client: Client, settings: Settings, stop: asyncio.Event, db: Database, probe: WorkerProbe) -> None:
    """Poll and relay until stop is set; then stop polling first and give running work the grace period."""
    try:
        added = await ensure_search_attributes(client)
        if added:
            log.info("registered search attributes %s", ", ".join(added))
    except Exception as exc:  # noqa: BLE001 - no operator rights (e.g. Temporal Cloud): cases still run
        log.warning("could not register search attributes (%s); create them as docs/operations.md says", exc)
    try:
        handle, done = await ensure_sweep_schedule(client, settings)
        log.info("rating sweep schedule %s %s", handle.id, done)
    except Exception as exc:  # noqa: BLE001 - cases still run; the schedule can be made later (docs/operations.md)
        log.warning("could not create the rating sweep schedule (%s); run python -m runtime.rating_sweep", exc)
    try:
        handle, done = await ensure_retention_schedule(client, settings)
        log.info("retention schedule %s %s", handle.id, done)
    except Exception as exc:  # noqa: BLE001 - as above (docs/retention.md)
        log.warning("could not create the retention schedule (%s); run python -m runtime.retention --schedule", exc)
    configure_pii_keys(settings.pii_key_list())
    activities = build_activities(settings, db)
    worker = build_worker(client, settings, activities)
    relays = [
        asyncio.create_task(OutboxRelay(db, client, settings).run(stop), name="outbox relay"),
        asyncio.create_task(
            NoticeRelay(activities.sender, settings, activities.notices_written).run(stop), name="notice relay"
        ),
        asyncio.create_task(UpstreamRelay(db, settings).run(stop), name="upstream relay"),
    ]
    if runs_here(settings):
        relays.append(asyncio.create_task(RollupRefresher(db, settings).run(stop), name="rollup refresher"))
    worker_task = asyncio.create_task(worker.run())
    probe.polling(worker)
    log.info("worker polling task queue %r at %s", settings.temporal_task_queue, settings.temporal_address)
    stop_task = asyncio.create_task(stop.wait())
    await asyncio.wait({worker_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    probe.draining()
    # Stop polling before anything else, so no new task starts here while the running ones finish.
    shutdown = asyncio.create_task(worker.shutdown()) if not worker_task.done() else None
    grace = settings.worker_shutdown_grace_seconds
    log.info("worker draining: polling stops, running activities and sends get %g s", grace)
    # The relays finish the send or batch in hand (they claim nothing more); one stuck past the grace is
    # cancelled: its claim runs out and another worker sends it again, under the same Message-ID.
    for task in await finish_within(relays, grace):
        log.warning("%s did not finish within %g s of the shutdown; cancelled", task.get_name(), grace)
    if shutdown is not None:
        await shutdown
    await worker_task


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format, process="worker")

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    asyncio.run(_main())
    tracing_for(settings, "hcp-worker").shutdown()  # its spans still batched: atexit hooks never run here
    # Everything is stopped and flushed here. Exit without interpreter finalization: the Temporal
    # core's native threads can still call into Python while it finalizes, which aborts the process
    # ("PyGILState_Release ... finalizing", seen in tests/test_worker_process.py about 1 run in 10).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
