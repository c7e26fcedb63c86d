"""The soak's look at Temporal: the case workflows by id prefix, each open one's state, and their histories.

Every open case must be waiting for someone the system will chase: a person at a stage whose deadline
clock runs (it reminds, then escalates), the unit inside its appeal filing window, or the rater inside
the answer window. A case waiting for nobody — a feedback written and never sent, an answer window
past and the case still open — would sit forever, and fails the books.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from soak_stack import Stack
from temporalio.client import Client, WorkflowExecutionStatus

from models.case.vocabulary import TERMINAL_STAGES, CaseSnapshot, Stage
from workflows.case import CaseWorkflow

# Stages where a person acts next, chased by the stage's running clock.
_CLOCKED = {
    Stage.ASSIGNED,
    Stage.VERIFICATION,
    Stage.RECTIFICATION,
    Stage.EXPLANATION,
    Stage.FEEDBACK,
    Stage.APPEAL_REVIEW,
}
_DATA = re.compile(r'"data":\s*"([A-Za-z0-9+/=]+)"')


@dataclass
class Workflows:
    """The case workflows Temporal lists: the latest run's status per workflow id, and how many runs in all."""

    status: dict[str, WorkflowExecutionStatus] = field(default_factory=dict)
    runs: int = 0

    @property
    def running(self) -> set[str]:
        """Ids of the workflows whose latest run is running."""
        return {wid for wid, status in self.status.items() if status == WorkflowExecutionStatus.RUNNING}


async def list_cases(client: Client, prefix: str) -> Workflows:
    """Every CaseWorkflow whose id starts with the prefix, by its latest run (a reopened round is a new run)."""
    found = Workflows()
    latest: dict[str, datetime] = {}
    query = f"WorkflowType = 'CaseWorkflow' AND WorkflowId STARTS_WITH '{prefix}'"
    async for execution in client.list_workflows(query):
        found.runs += 1
        started = execution.start_time
        if execution.id not in latest or started >= latest[execution.id]:
            latest[execution.id] = started
            found.status[execution.id] = execution.status or WorkflowExecutionStatus.RUNNING
    return found


@dataclass
class CaseView:
    """One consistent look at the cases: their rows, Temporal's listing, and what each open one waits for."""

    rows: list[tuple[int, str, str, int]]  # case id, workflow id, stage, round
    listed: Workflows
    waiting: Waiting

    @property
    def open_cases(self) -> dict[str, tuple[int, str]]:
        """Workflow id → (case id, stage) of every case row not closed."""
        return {wid: (case_id, stage) for case_id, wid, stage, _ in self.rows if Stage(stage) not in TERMINAL_STAGES}

    @property
    def consistent(self) -> bool:
        """Whether Temporal lists exactly the cases, running exactly the open ones, each at its row's stage."""
        ids = {wid for _, wid, _, _ in self.rows}
        return (
            set(self.listed.status) == ids
            and self.listed.running == set(self.open_cases)
            and not self.waiting.stage_differs
        )


async def look_at_cases(stack: Stack, client: Client, timeout: float = 90.0) -> CaseView:
    """Rows, listing and states, read again until they agree and the rows did not change meanwhile.

    Timers go on after the load stops (a rater's silence closes a case, an appeal window runs out) and
    Temporal's listing lags a moment behind: one look may catch a case in the middle of a move.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = _case_rows(stack)
        events: dict[int, list[tuple[int, str, dict[str, object]]]] = {}
        for case_id, round_, action, data in stack.sql(
            "SELECT case_id, round, action, data FROM caseevent ORDER BY id"
        ):
            timeline = events.setdefault(int(str(case_id)), [])
            timeline.append((int(str(round_)), str(action), data if isinstance(data, dict) else {}))
        [(now,)] = stack.sql("SELECT now()")
        assert isinstance(now, datetime)
        listed = await list_cases(client, stack.workflow_id_prefix)
        view = CaseView(rows, listed, Waiting())
        view.waiting = await who_waits(client, view.open_cases, events, now)
        if (view.consistent and _case_rows(stack) == rows) or asyncio.get_running_loop().time() > deadline:
            return view
        await asyncio.sleep(1)


def _case_rows(stack: Stack) -> list[tuple[int, str, str, int]]:
    found = stack.sql('SELECT id, workflow_id, stage, round FROM "case" ORDER BY id')
    return [(int(str(c)), str(w), str(s), int(str(r))) for c, w, s, r in found]


@dataclass
class Waiting:
    """What the open cases wait for, by kind; `nobody` lists the cases that wait for no one."""

    kinds: Counter[str] = field(default_factory=Counter)
    nobody: list[str] = field(default_factory=list)
    stage_differs: list[str] = field(default_factory=list)  # the case row says another stage than the workflow


async def who_waits(
    client: Client,
    open_cases: dict[str, tuple[int, str]],
    events: dict[int, list[tuple[int, str, dict[str, object]]]],
    now: datetime,
) -> Waiting:
    """Query each open workflow's state; `open_cases`: workflow id → (case id, stage of the case row).

    `events`: case id → its timeline as (round, action, data), to see the appeal window armed and the
    rater's answer window still open.
    """
    waiting = Waiting()
    for wid, (case_id, row_stage) in sorted(open_cases.items()):
        snapshot: CaseSnapshot = await client.get_workflow_handle_for(CaseWorkflow.run, wid).query(CaseWorkflow.state)
        if snapshot.stage.value != row_stage:
            waiting.stage_differs.append(f"case {case_id}: row {row_stage}, workflow {snapshot.stage.value}")
        this_round = [(action, data) for round_, action, data in events.get(case_id, []) if round_ == snapshot.round]
        actions = [action for action, _ in this_round]
        clock = any(d.state in ("running", "overdue") for d in snapshot.deadlines)
        if snapshot.stage == Stage.FEEDBACK and "feedback_written" in actions:
            kind = ""  # the result is written: only the system can move it on, and it has not
        elif snapshot.stage in _CLOCKED:
            kind = f"a person at {snapshot.stage.value}, clock running" if clock else ""
        elif snapshot.stage == Stage.APPEAL_FILING:
            kind = "the unit, appeal window open" if "appeal_window_opened" in actions else ""
        elif snapshot.stage == Stage.RATER_RESPONSE:
            respond_by = [str(data.get("respond_by", "")) for action, data in this_round if action == "feedback_sent"]
            open_window = respond_by and datetime.fromisoformat(respond_by[-1]) > now
            kind = "the rater, answer window open" if open_window else ""
        else:
            kind = ""
        if kind:
            waiting.kinds[kind] += 1
        else:
            waiting.nobody.append(f"case {case_id} ({wid}) at {snapshot.stage.value}, round {snapshot.round}")
    return waiting


async def histories_with(
    client: Client, workflows: Workflows, case_ids: dict[str, int], needles: list[str]
) -> tuple[int, list[str]]:
    """How many runs' histories were read, and those holding any of the needles (there must be none).

    A history counts as read when its payloads, decoded, show the run's own case id: proof that the
    search looked inside the payloads, where a rater's contact would be.
    """
    read, found = 0, []
    for wid in sorted(workflows.status):
        async for execution in client.list_workflows(f"WorkflowId = '{wid}'"):
            history = await client.get_workflow_handle(wid, run_id=execution.run_id).fetch_history()
            text = history.to_json()
            decoded = [text]
            for match in _DATA.finditer(text):
                try:
                    decoded.append(base64.b64decode(match.group(1)).decode("utf-8", errors="replace"))
                except (binascii.Error, ValueError):
                    continue
            haystack = "\n".join(decoded)
            read += f'"case_id":{case_ids.get(wid)},' in haystack
            seen = [n for n in needles if n in haystack or json.dumps(n)[1:-1] in haystack]
            if seen:
                found.append(f"{wid} run {execution.run_id}: {len(seen)} rater contact value(s)")
    return read, found
