"""What a case workflow holds: its state, the snapshot it reports, and the facts derived from it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.case.step_inputs import (
        CannotRectifyRequestInput,
        ExtensionRequestInput,
    )
    from models.case.vocabulary import (
        TERMINAL_STAGES,
        CaseSnapshot,
        CaseWorkflowInput,
        Outcome,
        Stage,
        Verdict,
    )
    from models.policy import DeadlineName, PolicyProfile
    from workflows.case.clock import Clock


_ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Database and SMTP outages are waited out rather than failing the case: retry forever, backing off.
_ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
_MIN_TIMER = timedelta(seconds=1)
# Notices ride on the timeline event that causes them (written in one transaction, sent by the
# worker's notice relay) instead of an activity awaited inside the step; the feedback moves the case to
# the rater's stage before the link exists; the rater's answer is taken without waiting for a write.
# Cases started before this marker keep the old sequence (tests/histories replay it).
NOTICES_BESIDE_STEPS = "notices-beside-steps"
# Each reopen round (重新交办) continues as a new run, so no run grows round after round toward
# Temporal's limits on updates and events. Cases started before this marker keep all rounds in one run.
ROUNDS_AS_RUNS = "rounds-as-runs"
# Timeline writes and due-date look-ups run as local activities: in the worker, inside the workflow
# task that decided them, recorded as one marker each. A step is then one workflow task instead of
# three, with no activity task queued on the server (docs/measurements.md, "Cases"). Cases started
# before this marker keep the queued activities.
STEPS_IN_ONE_TASK = "steps-in-one-task"


class CaseState:
    # Set in CaseWorkflow.__init__ (and _reset_round_state); declared here for every part of the class.
    _inp: CaseWorkflowInput
    _policy: PolicyProfile
    _stage: Stage
    _round: int
    _unit_id: int
    _seq: int
    _record_lock: asyncio.Lock
    _step_lock: asyncio.Lock
    _clocks: dict[DeadlineName, Clock]
    _finished: list[Clock]
    _clock_version: int
    _indexed: tuple[str, int, bool, int] | None
    _opened: bool
    _outcome: Outcome | None
    _rater_window_due: datetime | None
    _revalidating: bool
    _next_round: bool
    _callback_done: bool
    _verdict: Verdict | None
    _on_ledger: bool
    _ledger_latest: datetime | None
    _feedback_message: str | None
    _rater_answer: bool | None
    _rater_update_id: str | None
    _rater_silent: bool
    _pending_extension: ExtensionRequestInput | None
    _pending_cannot_rectify: CannotRectifyRequestInput | None

    def _reset_round_state(self) -> None:
        self._callback_done = False
        self._verdict: Verdict | None = None
        self._on_ledger = False
        self._ledger_latest: datetime | None = None
        self._feedback_message: str | None = None
        self._rater_answer: bool | None = None
        self._rater_silent = False  # the window ran out before an answer came
        self._rater_update_id: str | None = None
        self._pending_extension: ExtensionRequestInput | None = None
        self._pending_cannot_rectify: CannotRectifyRequestInput | None = None

    # A case on STEPS_IN_ONE_TASK started after the two earlier patches: they are implied, so it records
    # one patch marker (and one search-attribute upsert of TemporalChangeVersion) instead of three.
    def _notices_beside_steps(self) -> bool:
        return self._steps_in_one_task() or workflow.patched(NOTICES_BESIDE_STEPS)

    def _rounds_as_runs(self) -> bool:
        return self._steps_in_one_task() or workflow.patched(ROUNDS_AS_RUNS)

    def _steps_in_one_task(self) -> bool:
        return workflow.patched(STEPS_IN_ONE_TASK)

    async def _run_activity(self, name: str, arg: Any, result_type: type | None = None) -> Any:
        """Run one of the case's own activities: local on the current sequence, queued on the old one."""
        if self._steps_in_one_task():
            return await workflow.execute_local_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=_ACTIVITY_RETRY,
            )
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_ACTIVITY_RETRY,
        )

    def _running(self) -> bool:
        """The case goes on in this run: not ended, and not about to continue as the next round's run."""
        return self._stage not in TERMINAL_STAGES and not self._next_round

    def _progress_key(self) -> tuple[Stage, int, int, bool]:
        return self._stage, self._round, self._unit_id, self._feedback_message is not None

    def _progressed_since(self, key: tuple[Stage, int, int, bool]) -> Callable[[], bool]:
        return lambda: self._progress_key() != key

    def _callback_required(self) -> bool:
        return self._inp.real_name or (self._policy.anonymous.callback_required and self._inp.rater_reachable)

    def _rater_can_be_told(self) -> bool:
        return self._inp.rater_reachable and (self._inp.real_name or self._policy.anonymous.feedback_possible)

    def _snapshot(self) -> CaseSnapshot:
        running = list(self._clocks.values())
        this_round = [c for c in self._finished if c.round == self._round] + running
        return CaseSnapshot(
            case_id=self._inp.case_id,
            stage=self._stage,
            round=self._round,
            unit_id=self._unit_id,
            verdict=self._verdict,
            outcome=self._outcome,
            overdue=any(c.overdue for c in running),
            escalation_rung=max((c.rung for c in running), default=0),
            callback_done=self._callback_done,
            deadlines=[c.view() for c in sorted(this_round, key=lambda c: c.started_at)],
            pending_extension=self._pending_extension.deadline if self._pending_extension else None,
            pending_cannot_rectify=self._pending_cannot_rectify is not None,
            ledger_latest_due=self._ledger_latest,
            rater_answer=self._rater_answer,
        )
