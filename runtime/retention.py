"""The retention job (docs/retention.md): run it now, count what it would do, or set up its Temporal Schedule.

    python -m runtime.retention              anonymise everything due now, batch by batch, printing progress
    python -m runtime.retention --dry-run    count what is due now; change nothing
    python -m runtime.retention --schedule   create or update the schedule from the settings (worker.py does it too)

The schedule starts workflows/retention.py every HCP_RETENTION_INTERVAL_SECONDS on the worker's task
queue, never two at once (overlap: skip). Its id is `<HCP_WORKFLOW_ID_PREFIX>retention`. The command
runs the same batches as the workflow's activities, one transaction each, so it may run beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from datetime import datetime, timedelta

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

from activities.retention import RetentionActivities
from config import Settings, get_settings
from models.db import Database, utcnow
from models.pii import configure_pii_keys
from models.retention import Periods, count_due
from models.retention_io import RetentionBatchInput, RetentionInput, RetentionReport
from runtime.temporal import connect
from workflows.retention import RetentionWorkflow

# A run that has not finished in this time is ended, so a stuck one cannot hold the schedule (overlap: skip).
RUN_TIMEOUT = timedelta(hours=6)


def schedule_id(settings: Settings) -> str:
    return f"{settings.workflow_id_prefix}retention"


def retention_schedule(settings: Settings) -> Schedule:
    """The schedule as the settings say it should be."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            RetentionInput(batch_size=settings.retention_batch_size),
            id=schedule_id(settings),  # Temporal appends each run's scheduled time
            task_queue=settings.temporal_task_queue,
            execution_timeout=RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.retention_interval_seconds))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(minutes=1)),
        state=ScheduleState(note="好差评：评价人个人信息到期匿名化 (docs/retention.md)"),
    )


async def ensure_retention_schedule(client: Client, settings: Settings) -> tuple[ScheduleHandle, str]:
    """Create the schedule, or bring an existing one to the settings; idempotent. Returns it and what was done."""
    schedule = retention_schedule(settings)
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


async def run_now(db: Database, settings: Settings, now: datetime, out: object = sys.stdout) -> RetentionReport:
    """Every batch due at `now`, as the workflow runs them, printing a line per batch."""
    activities = RetentionActivities(db, settings)
    report = RetentionReport()
    for kind, call in (("ratings", activities.ratings), ("records", activities.records)):
        after_id = 0
        while True:
            batch = await call(RetentionBatchInput(now=now, after_id=after_id, limit=settings.retention_batch_size))
            report.batches += 1
            if kind == "ratings":
                report.ratings += batch.scanned
                report.cases += batch.cases
            else:
                report.records += batch.scanned
            if batch.scanned:
                done = report.ratings if kind == "ratings" else report.records
                print(f"{kind}: batch of {batch.scanned} up to id {batch.last_id} ({done} so far)", file=out)  # type: ignore[call-overload]
            if batch.last_id is None or batch.scanned < settings.retention_batch_size:
                break
            after_id = batch.last_id
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runtime.retention", description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--dry-run", action="store_true", help="count what is due now; change nothing")
    what.add_argument("--schedule", action="store_true", help="create or update the Temporal Schedule")
    args = parser.parse_args(argv)
    settings = get_settings()

    async def run() -> None:
        if args.schedule:
            handle, done = await ensure_retention_schedule(await connect(settings), settings)
            print(f"schedule {handle.id} {done}: every {settings.retention_interval_seconds:g} s")
            return
        configure_pii_keys(settings.pii_key_list())
        db = Database(settings.async_sqlalchemy_url)
        now = utcnow()
        periods = Periods.of(settings)
        print(f"keeping {periods.after_case.days} days after a case closed, {periods.uncased.days} days otherwise")
        try:
            if args.dry_run:
                async with db.session() as session:
                    due = await count_due(session, now, periods)
                print(
                    f"due now: {due.ratings} ratings, {due.records} records' applicant contact (dry run: nothing changed)"
                )
                return
            report = await run_now(db, settings, now)
            print(
                f"anonymised {report.ratings} ratings ({report.cases} cases' texts masked), "
                f"erased {report.records} records' applicant contact, in {report.batches} batches"
            )
        finally:
            await db.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
