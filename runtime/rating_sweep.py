"""The rating sweep's Temporal Schedule (评价时限巡检): created or updated at worker start, or by this command.

    python -m runtime.rating_sweep            create or update the schedule from the settings
    python -m runtime.rating_sweep --now      ... and run the sweep once now (the schedule's action)

The schedule starts workflows/rating_sweep.py every HCP_RATING_SWEEP_INTERVAL_SECONDS on the
worker's task queue, never two at once (overlap: skip). Its id is `<HCP_WORKFLOW_ID_PREFIX>rating-sweep`,
so deployments sharing a namespace keep theirs apart. Its argument holds batch sizes only.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from config import Settings, get_settings
from models.rating_sweep_io import RatingSweepInput
from runtime.temporal import connect
from workflows.rating_sweep import RatingSweepWorkflow

log = logging.getLogger(__name__)

# A run that has not finished in this time is ended, so a stuck one cannot hold the schedule (overlap: skip).
RUN_TIMEOUT = timedelta(hours=1)


def schedule_id(settings: Settings) -> str:
    return f"{settings.workflow_id_prefix}rating-sweep"


def sweep_schedule(settings: Settings) -> Schedule:
    """The schedule as the settings say it should be."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RatingSweepWorkflow.run,
            RatingSweepInput(batch_size=settings.rating_sweep_batch_size),
            id=schedule_id(settings),  # Temporal appends each run's scheduled time
            task_queue=settings.temporal_task_queue,
            execution_timeout=RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.rating_sweep_interval_seconds))]
        ),
        # One run at a time; a run missed while Temporal was down is not made up (the next one covers it).
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(minutes=1)),
        state=ScheduleState(note="好差评：默认评价与邀评巡检 (docs/operations.md)"),
    )


async def ensure_sweep_schedule(client: Client, settings: Settings) -> tuple[ScheduleHandle, str]:
    """Create the schedule, or bring an existing one to the settings; idempotent. Returns it and what was done."""
    schedule = sweep_schedule(settings)
    try:
        handle = await client.create_schedule(schedule_id(settings), schedule)
        return handle, "created"
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(schedule_id(settings))

        def to_settings(current: ScheduleUpdateInput) -> ScheduleUpdate:
            # The settings' spec and action; its state as it is, so a schedule an operator paused stays paused.
            return ScheduleUpdate(schedule=dataclasses.replace(schedule, state=current.description.schedule.state))

        await handle.update(to_settings)
        return handle, "updated"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runtime.rating_sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--now", action="store_true", help="also run the sweep once now")
    args = parser.parse_args(argv)
    settings = get_settings()

    async def run() -> None:
        client = await connect(settings)
        handle, done = await ensure_sweep_schedule(client, settings)
        print(f"schedule {handle.id} {done}: every {settings.rating_sweep_interval_seconds:g} s")
        if args.now:
            await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
            print("a run was started now")

    asyncio.run(run())


if __name__ == "__main__":
    main()
