"""The rating sweep (评价时限巡检): every few minutes, from a Temporal Schedule, never one workflow per transaction.

One run writes the default ratings that have fallen due (默认评价), then queues the invitations
(邀评), each in batches of unrated records by id (a keyset cursor), each batch one activity and one
database transaction. The schedule never overlaps two runs; were two to run anyway (a manual
trigger), the batches lock their records (SKIP LOCKED) and each record is still handled once.
Defaults come first so a record due both is rated, not invited. Inputs, results and history hold
counts, cursors and times only.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.rating_sweep_io import (
        RatingSweepInput,
        RatingSweepReport,
        SweepActivity,
        SweepBatchInput,
        SweepBatchResult,
    )

_BATCH_TIMEOUT = timedelta(minutes=2)
# A database outage: keep trying, more slowly; the schedule skips its runs meanwhile (no pile-up).
_BATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name="RatingSweep")
class RatingSweepWorkflow:
    @workflow.run
    async def run(self, inp: RatingSweepInput) -> RatingSweepReport:
        """Default ratings, then invitations, each until no record is left or max_batches is reached."""
        now = workflow.now()
        report = RatingSweepReport()
        for kind in (SweepActivity.DEFAULT, SweepActivity.INVITE):
            after_id = 0
            for _ in range(inp.max_batches):
                batch = await workflow.execute_activity(
                    kind,
                    SweepBatchInput(now=now, after_id=after_id, limit=inp.batch_size),
                    result_type=SweepBatchResult,
                    start_to_close_timeout=_BATCH_TIMEOUT,
                    retry_policy=_BATCH_RETRY,
                )
                report.batches += 1
                if kind == SweepActivity.DEFAULT:
                    report.default_ratings += batch.written
                else:
                    report.invitations += batch.written
                    report.sms += batch.sms
                    report.email += batch.email
                if batch.last_id is None or batch.scanned < inp.batch_size:
                    break
                after_id = batch.last_id
        return report
