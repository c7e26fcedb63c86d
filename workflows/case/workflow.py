"""The case workflow (差评工单流程): one durable workflow per bad rating, for as long as the case lasts.

The state machine (stages and allowed moves: models/case/vocabulary.py TRANSITIONS):

    assigned ─accept─▶ verification ─verify(valid)──────────▶ rectification ─(ledger)─ rectify ─┐
      ▲                 (callbacks)  ├verify(no_legal_basis)─▶ explanation ─ explain ─────────────┤
      │                              └verify(disputed)───────▶ appeal_filing ─file_appeal─▶ appeal_review
      │                                   window expires → rectification ◀── rejected ──┘   │ upheld
      │                                                                          not_adopted ◀┘
      │  reassign (supervisor, any working stage)          feedback ◀──────────────────────────┘
      │                                                       │ give_feedback → mail/SMS with answer link
      └──── reopen (not satisfied, rounds left) ◀── rater_response ── satisfied / silence → closed

Human steps are Updates: each validator checks stage, role and fields before anything is written,
so a rejected click leaves no trace. Automatic steps run in `run`: delivering feedback, waiting for
the rater, the appeal filing window, reopening. Every stage deadline is a Clock (workflows/case/clock.py)
watched by `_watch_clocks` (board.py): reminders before it, escalation rungs after it. Every change is written
to the database by the record_case_event activity, with the whole derived state, so the read model
is never behind the workflow by more than one write.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.case.activity_io import (
        FeedbackNoticeInput,
        NoticeRequest,
        NoticeResult,
    )
    from models.case.vocabulary import (
        RATER_ACTOR,
        ActivityName,
        CaseSnapshot,
        CaseWorkflowInput,
        Outcome,
        RoundCarry,
        Stage,
    )
    from models.policy import DeadlineName
    from workflows.case.clock import Clock


from workflows.case.review_steps import ReviewSteps
from workflows.case.state import _ACTIVITY_RETRY, _ACTIVITY_TIMEOUT, _MIN_TIMER
from workflows.case.supervisor_steps import SupervisorSteps
from workflows.case.unit_steps import UnitSteps


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow(UnitSteps, SupervisorSteps, ReviewSteps):
    @workflow.init
    def __init__(self, inp: CaseWorkflowInput) -> None:
        self._inp = inp
        self._policy = inp.policy.profile
        self._stage = Stage.ASSIGNED
        self._round = 1
        self._unit_id = inp.unit_id
        self._seq = 0
        self._record_lock = asyncio.Lock()  # timeline writes go out one at a time, in decision order
        # One step at a time: a human step or an automatic transition holds this from its check to its
        # last write, so two clicks can never interleave half-done transitions.
        self._step_lock = asyncio.Lock()
        self._clocks: dict[DeadlineName, Clock] = {}
        self._finished: list[Clock] = []
        self._clock_version = 0  # bumped whenever a clock starts, stops or moves
        self._indexed: tuple[str, int, bool, int] | None = None  # search attributes last upserted
        self._opened = False
        self._outcome: Outcome | None = None
        self._rater_window_due: datetime | None = None
        self._revalidating = False  # set while a step re-checks its validator after waiting its turn
        self._next_round = False  # the rater is not satisfied: this run ends and the next round's begins
        if inp.carry is not None:
            self._round, self._seq = inp.carry.round, inp.carry.seq
        self._reset_round_state()

    @workflow.run
    async def run(self, inp: CaseWorkflowInput) -> CaseSnapshot:
        # Patches are decided once, first, so their markers sit at the same place in every run.
        self._steps_in_one_task()
        self._notices_beside_steps()
        self._rounds_as_runs()
        if inp.carry is None:
            await self._start_round(
                "opened", data={"level": inp.level, "policy": f"{inp.policy.code}@v{inp.policy.version}"}
            )
        else:
            await self._start_round(
                "reopened",
                data={"round": self._round},
                notice=self._notice("reopened", "unit_staff", key=f"reopened.r{self._round}"),
            )
        self._opened = True
        clock_watch = asyncio.create_task(self._watch_clocks())
        while self._running():
            if self._stage == Stage.FEEDBACK and self._feedback_message is not None:
                async with self._step_lock:
                    await self._deliver_feedback()
            elif self._stage == Stage.RATER_RESPONSE:
                await self._await_rater()
            elif self._stage == Stage.APPEAL_FILING:
                await self._await_appeal_filing()
            else:
                await workflow.wait_condition(self._progressed_since(self._progress_key()))
        self._clock_version += 1
        await clock_watch
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._next_round:
            carry = RoundCarry(round=self._round + 1, seq=self._seq)
            workflow.continue_as_new(self._inp.model_copy(update={"unit_id": self._unit_id, "carry": carry}))
        return self._snapshot()

    async def _deliver_feedback(self) -> None:
        """Send the unit's result to the rater with an answer link, or close if nobody can be told."""
        assert self._feedback_message is not None
        self._stop_clocks_of(Stage.FEEDBACK)
        if not self._rater_can_be_told():
            await self._record("feedback_not_sent", data={"reason": "评价人未留联系方式（匿名评价）"})
            self._outcome = Outcome.NO_CONTACT
            self._move_to(Stage.CLOSED)
            await self._record("closed")
            return
        window = await self._compute_due(workflow.now(), DeadlineName.RATER_RESPONSE)
        if self._notices_beside_steps():
            # The case waits for the rater before the link exists, so an answer given the moment the
            # SMS arrives is taken; the link and both messages are written with the event below.
            self._rater_window_due = window.at
            self._move_to(Stage.RATER_RESPONSE)
            feedback = NoticeRequest(
                kind="feedback",
                audience="rater",
                key=f"feedback.r{self._round}",
                message=self._feedback_message,
                respond_by=window.at,
            )
            await self._record("feedback_sent", data={"respond_by": window.at.isoformat()}, notices=[feedback])
            return
        notice = await workflow.execute_activity(
            ActivityName.SEND_RATER_FEEDBACK,
            FeedbackNoticeInput(
                case_id=self._inp.case_id, round=self._round, message=self._feedback_message, respond_by=window.at
            ),
            result_type=NoticeResult,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_ACTIVITY_RETRY,
        )
        self._rater_window_due = window.at
        self._move_to(Stage.RATER_RESPONSE)
        await self._record("feedback_sent", data={**notice.model_dump(), "respond_by": window.at.isoformat()})

    async def _await_rater(self) -> None:
        """Wait for the rater's answer; silence counts as the profile says. Not satisfied → reopen or escalate."""
        assert self._rater_window_due is not None
        remaining = max(self._rater_window_due - workflow.now(), _MIN_TIMER)
        if self._steps_in_one_task():
            # After the answer this run ends (closed, or the next round's run): the window's timer is left
            # to lapse with it instead of being cancelled, one history event less per case.
            window = asyncio.create_task(workflow.sleep(remaining))
            await workflow.wait_condition(lambda: self._rater_answer is not None or window.done())
            silent = self._rater_answer is None
        else:
            try:
                await workflow.wait_condition(lambda: self._rater_answer is not None, timeout=remaining)
                silent = False
            except TimeoutError:
                silent = True
        async with self._step_lock:
            await self._after_rater_answer(silent)

    async def _after_rater_answer(self, silent: bool) -> None:
        """Close, reopen or escalate on the rater's answer (or on silence, as the profile counts it)."""
        if silent and self._rater_answer is None:
            self._rater_silent = True
            self._rater_answer = self._policy.rater_silence_outcome == "satisfied"
            await self._record("rater_silent", data={"counted_as": self._policy.rater_silence_outcome})
        else:
            silent = False
            if self._rater_update_id is not None:  # taken by the update without a write: record it now
                await self._record(
                    "rater_responded",
                    actor=RATER_ACTOR,
                    data={"satisfied": self._rater_answer},
                    update_id=self._rater_update_id,
                )
        if self._rater_answer:
            self._outcome = Outcome.SATISFIED_BY_SILENCE if silent else Outcome.SATISFIED
            self._move_to(Stage.CLOSED)
            await self._record("closed")
        elif self._round <= self._policy.max_reopen_rounds:
            if self._rounds_as_runs():
                # The next round starts in a run of its own, which records "reopened" and tells the unit.
                self._next_round = True
                return
            self._round += 1
            self._reset_round_state()
            self._move_to(Stage.ASSIGNED)
            await self._start_round(
                "reopened",
                data={"round": self._round},
                notice=self._notice("reopened", "unit_staff", key=f"reopened.r{self._round}"),
            )
        else:
            self._outcome = Outcome.UNSATISFIED
            final = self._notice("unsatisfied_final", "management_office", key=f"unsatisfied.r{self._round}")
            beside = self._notices_beside_steps()
            if not beside:
                await self._notify_legacy(final)
            self._move_to(Stage.CLOSED)
            await self._record(
                "closed",
                data={"reason": f"评价人仍不满意，已达最多 {self._policy.max_reopen_rounds} 次重新交办"},
                notices=[final] if beside else [],
            )

    async def _await_appeal_filing(self) -> None:
        """The unit has a window to file its appeal; when it passes unused, the case goes to rectification."""
        window = await self._compute_due(workflow.now(), DeadlineName.APPEAL_FILING)
        await self._record("appeal_window_opened", data={"file_by": window.at.isoformat()})
        try:
            await workflow.wait_condition(
                lambda: self._stage != Stage.APPEAL_FILING, timeout=max(window.at - workflow.now(), _MIN_TIMER)
            )
        except TimeoutError:
            async with self._step_lock:
                if self._stage == Stage.APPEAL_FILING:  # an appeal filed at the last moment wins
                    self._move_to(Stage.RECTIFICATION)
                    await self._enter_rectification("appeal_window_expired")
