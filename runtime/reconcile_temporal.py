"""What Temporal knows of the case workflows, for the reconciliation (runtime/reconcile.py).

Read from the listing, a workflow's description and its current run's history: the run's input (ids
and the round it carries), the timeline event keys its record_case_event calls wrote, and the final
snapshot of a finished run. Histories hold ids, codes and times only (docs/security.md), and only
event keys are taken from them here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from models.case.vocabulary import ActivityName, CaseSnapshot
from workflows.case import CaseWorkflow

_SEQ_KEY = re.compile(r"^(\d+)-")
QUERY_TIMEOUT = timedelta(seconds=15)
# The marker the SDK records for each completed local activity (its details name the activity type).
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def key_seq(event_key: str) -> int | None:
    """The workflow's sequence number in a timeline event key ("0007-accepted" → 7); None for other keys."""
    match = _SEQ_KEY.match(event_key)
    return int(match.group(1)) if match else None


def case_workflow_prefix(prefix: str) -> str:
    """Every case workflow id of this deployment starts with this (models/case/vocabulary.workflow_id_for_rating)."""
    return f"{prefix}case-rating-"


async def running_case_workflows(client: Client, prefix: str, since: datetime | None) -> set[str]:
    """Ids of the running case workflows of this deployment (started at or after `since`, when given)."""
    query = (
        f"WorkflowType = 'CaseWorkflow' AND WorkflowId STARTS_WITH '{case_workflow_prefix(prefix)}'"
        " AND ExecutionStatus = 'Running'"
    )
    if since is not None:
        query += f" AND StartTime >= '{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    return {execution.id async for execution in client.list_workflows(query)}


@dataclass
class RunFacts:
    """One workflow's current run, as its description and history tell it.

    Every timeline write of a run is one record_case_event call and takes the next event number, so
    the run has written numbers carried + 1 … carried + `recorded`. Their keys are known only for
    calls queued on the server (older cases); a local activity's marker holds no input.
    """

    workflow_id: str
    run_id: str
    status: WorkflowExecutionStatus
    close_time: datetime | None
    start_time: datetime | None
    input: dict[str, Any]
    recorded: int = 0  # record_case_event calls that completed
    recorded_keys: dict[int, str] = field(default_factory=dict)  # their keys by number, where the history has them
    in_flight: int = 0  # queued on the server and not completed (running or retrying)
    result: CaseSnapshot | None = None  # the snapshot a completed run returned

    @property
    def carried(self) -> int:
        return int((self.input.get("carry") or {}).get("seq", 0))

    @property
    def seq(self) -> int:
        """The highest timeline event number this run has written (or the one it carried over)."""
        return self.carried + self.recorded

    @property
    def running(self) -> bool:
        return self.status == WorkflowExecutionStatus.RUNNING

    def missing_from(self, keys: set[str]) -> list[str]:
        """The events this workflow wrote that a timeline with these keys lacks (by key, or by number)."""
        present = {key_seq(key) for key in keys}
        return [self.recorded_keys.get(n, f"{n:04d}-unknown") for n in range(1, self.seq + 1) if n not in present]


async def run_facts(client: Client, workflow_id: str) -> RunFacts | None:
    """The current run's facts; None when Temporal has no workflow of that id."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    history = await client.get_workflow_handle(workflow_id, run_id=described.run_id).fetch_history()
    converter = client.data_converter
    facts = RunFacts(
        workflow_id=workflow_id,
        run_id=described.run_id,
        status=described.status or WorkflowExecutionStatus.RUNNING,
        close_time=described.close_time,
        start_time=described.start_time,
        input={},
    )
    scheduled: dict[int, str] = {}
    completed: set[int] = set()
    for event in history.events:
        if event.HasField("workflow_execution_started_event_attributes"):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [facts.input] = await converter.decode(list(payloads), [dict])
        elif event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == ActivityName.RECORD_CASE_EVENT:
                [recorded] = await converter.decode(list(attributes.input.payloads), [dict])
                scheduled[event.event_id] = str(recorded["event_key"])
        elif event.HasField("activity_task_completed_event_attributes"):
            completed.add(event.activity_task_completed_event_attributes.scheduled_event_id)
        elif event.HasField("marker_recorded_event_attributes"):
            facts.recorded += _local_record_done(event.marker_recorded_event_attributes)
        elif event.HasField("workflow_execution_completed_event_attributes"):
            payloads = event.workflow_execution_completed_event_attributes.result.payloads
            [facts.result] = await converter.decode(list(payloads), [CaseSnapshot])
    for event_id, key in sorted(scheduled.items()):
        if event_id in completed:
            facts.recorded += 1
            number = key_seq(key)
            if number is not None:
                facts.recorded_keys[number] = key
        else:
            facts.in_flight += 1
    return facts


def _local_record_done(marker: Any) -> int:
    """1 for the marker of a record_case_event local activity that completed, else 0."""
    if marker.marker_name != LOCAL_ACTIVITY_MARKER or marker.HasField("failure"):
        return 0
    for payloads in marker.details.values():
        for payload in payloads.payloads:
            try:
                data = json.loads(payload.data)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("activity_type") == ActivityName.RECORD_CASE_EVENT:
                return 1
    return 0


async def current_snapshot(client: Client, facts: RunFacts) -> CaseSnapshot:
    """The case as the workflow sees it now: its `state` query, or the result of a finished run."""
    if facts.result is not None:
        return facts.result
    handle = client.get_workflow_handle_for(CaseWorkflow.run, facts.workflow_id)
    return await handle.query(CaseWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
