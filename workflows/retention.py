"""The retention job (个人信息到期匿名化): daily, from a Temporal Schedule, in batches.

One run anonymises the ratings that are due, then erases the applicant contacts that are due, each
in batches by id (a keyset cursor), each batch one activity and one database transaction. The
schedule never overlaps two runs; were two to run anyway, the batches lock their rows (SKIP LOCKED)
and each row is still done once. Inputs, results and history hold counts, cursors and times only.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.retention_io import (
        RetentionActivity,
        RetentionBatchInput,
        RetentionBatchResult,
        RetentionInput,
        RetentionReport,
    )

_BATCH_TIMEOUT = timedelta(minutes=5)
# A database outage: keep trying, more slowly; the schedule skips its runs meanwhile (no pile-up).
_BATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name="Retention")
class RetentionWorkflow:
    @workflow.run
    async def run(self, inp: RetentionInput) -> RetentionReport:
        """Ratings, then records, each until none is left or max_batches is reached."""
        now = workflow.now()
        report = RetentionReport()
        for kind in (RetentionActivity.RATINGS, RetentionActivity.RECORDS):
            after_id = 0
            for _ in range(inp.max_batches):
                batch = await workflow.execute_activity(
                    kind,
                    RetentionBatchInput(now=now, after_id=after_id, limit=inp.batch_size),
                    result_type=RetentionBatchResult,
                    start_to_close_timeout=_BATCH_TIMEOUT,
                    retry_policy=_BATCH_RETRY,
                )
                report.batches += 1
                if kind == RetentionActivity.RATINGS:
                    report.ratings += batch.scanned
                    report.cases += batch.cases
                else:
                    report.records += batch.scanned
                if batch.last_id is None or batch.scanned < inp.batch_size:
                    break
                after_id = batch.last_id
        return report
