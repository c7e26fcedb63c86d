"""The baselines: workflows that do nothing but what the Temporal server must do for any case.

`MinimalWorkflow` takes the same number of Updates as a case and answers each at once (no activity,
no timer, no write). `BareTimerWorkflow` sleeps until a given instant and reports how late it woke.
Run their worker as its own process, like the case worker, so both meet the same scheduler:

    .venv/bin/python -m bench.minimal --address 127.0.0.1:7233 --task-queue bench-minimal
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

MINIMAL_TASK_QUEUE = "bench-minimal"


@workflow.defn(name="BenchMinimalWorkflow")
class MinimalWorkflow:
    """Ends after `steps` Updates; each Update only counts."""

    def __init__(self) -> None:
        self._taken = 0

    @workflow.run
    async def run(self, steps: int) -> int:
        await workflow.wait_condition(lambda: self._taken >= steps)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._taken

    @workflow.update
    async def step(self, name: str) -> int:
        self._taken += 1
        return self._taken

    @step.validator
    def _validate_step(self, name: str) -> None:
        if not name:
            raise ValueError("a step needs a name")


@activity.defn(name="bench_note_wakeup")
async def note_wakeup(planned: datetime) -> float:
    """Seconds between the planned instant and now, as the worker sees it: the bare timer's lateness."""
    return (datetime.now(planned.tzinfo) - planned).total_seconds()


@workflow.defn(name="BenchBareTimerWorkflow")
class BareTimerWorkflow:
    """Sleeps until `due`, then one activity notes how late it woke (the case's reminder is one write too)."""

    @workflow.run
    async def run(self, due: datetime) -> float:
        await workflow.sleep(max((due - workflow.now()).total_seconds(), 0.001))
        return await workflow.execute_activity(note_wakeup, due, start_to_close_timeout=timedelta(seconds=30))


async def serve(address: str, namespace: str, task_queue: str) -> None:
    """Poll until SIGTERM or SIGINT."""
    client = await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[MinimalWorkflow, BareTimerWorkflow],
        activities=[note_wakeup],
    ):
        print("minimal worker polling", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default=MINIMAL_TASK_QUEUE)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.namespace, args.task_queue))


if __name__ == "__main__":
    main()
