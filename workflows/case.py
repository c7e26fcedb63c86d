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
the rater, the appeal filing window, reopening. Every stage deadline is a Clock (workflows/clock.py)
watched by `_watch_clocks`: reminders before it, escalation rungs after it. Every change is written
to the database by the record_case_event activity, with the whole derived state, so the read model
is never behind the workflow by more than one write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.case.activity_io import (
        Audience,
        CaseFields,
        ComputeDueInput,
        FeedbackNoticeInput,
        NoticeKind,
        NoticeRequest,
        NoticeResult,
        NotifyInput,
        RecordEventInput,
    )
    from models.case.step_inputs import (
        AcceptInput,
        AppealDecisionInput,
        AppealInput,
        CallbackInput,
        ExplanationInput,
        ExtendInput,
        ExtensionDecisionInput,
        ExtensionRequestInput,
        FeedbackInput,
        InstructionInput,
        LedgerInput,
        RaterResponseInput,
        ReassignInput,
        RectificationInput,
        RemindInput,
        VerificationInput,
    )
    from models.case.vocabulary import (
        DEADLINE_LABELS_ZH,
        RATER_ACTOR,
        REASSIGNABLE_STAGES,
        STAGE_LABELS_ZH,
        SYSTEM_ACTOR,
        TERMINAL_STAGES,
        TRANSITIONS,
        ActivityName,
        Actor,
        CaseSnapshot,
        CaseWorkflowInput,
        ErrorType,
        Outcome,
        Stage,
        Verdict,
    )
    from models.deadlines import DueDate
    from models.policy import DeadlineName
    from models.roles import Role
    from models.search_attributes import CASE_ESCALATION_RUNG, CASE_OVERDUE, CASE_STAGE, CASE_UNIT
    from workflows.clock import Clock

_ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Database and SMTP outages are waited out rather than failing the case: retry forever, backing off.
_ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
_MIN_TIMER = timedelta(seconds=1)
# Notices ride on the timeline event that causes them (written in one transaction, sent by the
# worker's notice relay) instead of an activity awaited inside the step; the feedback moves the case to
# the rater's stage before the link exists; the rater's answer is taken without waiting for a write.
# Cases started before this marker keep the old sequence (tests/histories replay it).
NOTICES_BESIDE_STEPS = "notices-beside-steps"

# Which clocks run in which stage; leaving the stage stops them.
_STAGE_CLOCKS: dict[Stage, tuple[DeadlineName, ...]] = {
    Stage.ASSIGNED: (DeadlineName.CALLBACK, DeadlineName.VERIFICATION),
    Stage.VERIFICATION: (DeadlineName.CALLBACK, DeadlineName.VERIFICATION),
    Stage.RECTIFICATION: (DeadlineName.RECTIFICATION_IMMEDIATE, DeadlineName.RECTIFICATION_LEDGER_MAX),
    Stage.EXPLANATION: (DeadlineName.EXPLANATION,),
    Stage.FEEDBACK: (DeadlineName.FEEDBACK,),
    Stage.APPEAL_REVIEW: (DeadlineName.APPEAL_DECISION,),
}


def _reject(message: str, kind: str = ErrorType.WRONG_STAGE) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow:
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
        self._reset_round_state()

    def _reset_round_state(self) -> None:
        self._callback_done = False
        self._verdict: Verdict | None = None
        self._on_ledger = False
        self._ledger_latest: datetime | None = None
        self._feedback_message: str | None = None
        self._rater_answer: bool | None = None
        self._rater_update_id: str | None = None
        self._pending_extension: ExtensionRequestInput | None = None

    # ---- automatic steps -------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CaseWorkflowInput) -> CaseSnapshot:
        self._notices_beside_steps()  # decided once, first, so the marker sits at the same place in every run
        await self._start_round(
            "opened", data={"level": inp.level, "policy": f"{inp.policy.code}@v{inp.policy.version}"}
        )
        self._opened = True
        clock_watch = asyncio.create_task(self._watch_clocks())
        while self._stage not in TERMINAL_STAGES:
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
        return self._snapshot()

    def _notices_beside_steps(self) -> bool:
        return workflow.patched(NOTICES_BESIDE_STEPS)

    def _progress_key(self) -> tuple[Stage, int, int, bool]:
        return self._stage, self._round, self._unit_id, self._feedback_message is not None

    def _progressed_since(self, key: tuple[Stage, int, int, bool]) -> Callable[[], bool]:
        return lambda: self._progress_key() != key

    def _callback_required(self) -> bool:
        return self._inp.real_name or (self._policy.anonymous.callback_required and self._inp.rater_reachable)

    def _rater_can_be_told(self) -> bool:
        return self._inp.rater_reachable and (self._inp.real_name or self._policy.anonymous.feedback_possible)

    async def _start_round(
        self,
        action: str,
        actor: Actor | None = None,
        data: dict[str, Any] | None = None,
        notice: NoticeRequest | None = None,
    ) -> None:
        """Start (or restart) a round at the current unit: callback and verification clocks from now."""
        now = workflow.now()
        await self._start_clock(DeadlineName.VERIFICATION, now)
        if self._callback_required():
            await self._start_clock(DeadlineName.CALLBACK, now)
        beside = self._notices_beside_steps()
        notices = [notice] if notice and beside else []
        await self._record(
            action, actor=actor, data={**(data or {}), "callback_required": self._callback_required()}, notices=notices
        )
        if not self._callback_required():
            await self._record("callback_not_required", data={"reason": "匿名评价，无需回访"})
        if notice and not beside:
            await self._notify_legacy(notice)

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
        remaining = self._rater_window_due - workflow.now()
        try:
            await workflow.wait_condition(lambda: self._rater_answer is not None, timeout=max(remaining, _MIN_TIMER))
            silent = False
        except TimeoutError:
            silent = True
        async with self._step_lock:
            await self._after_rater_answer(silent)

    async def _after_rater_answer(self, silent: bool) -> None:
        """Close, reopen or escalate on the rater's answer (or on silence, as the profile counts it)."""
        if silent and self._rater_answer is None:
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

    async def _enter_rectification(
        self, action: str, actor: Actor | None = None, data: dict[str, Any] | None = None
    ) -> None:
        now = workflow.now()
        self._on_ledger = False
        self._ledger_latest = (await self._compute_due(now, DeadlineName.RECTIFICATION_LEDGER_MAX)).at
        await self._start_clock(DeadlineName.RECTIFICATION_IMMEDIATE, now)
        await self._record(
            action, actor=actor, data={**(data or {}), "ledger_latest_due": self._ledger_latest.isoformat()}
        )

    # ---- deadline clocks ---------------------------------------------------------------------

    async def _watch_clocks(self) -> None:
        """Fire reminders and escalation rungs of every running clock, in time order, until the case ends."""
        while self._stage not in TERMINAL_STAGES:
            version = self._clock_version
            upcoming = [(event, clock) for clock in self._clocks.values() if (event := clock.next_event())]
            changed = lambda v=version: self._clock_version != v or self._stage in TERMINAL_STAGES  # noqa: E731
            if not upcoming:
                await workflow.wait_condition(changed)
                continue
            (at, kind), clock = min(upcoming, key=lambda item: (item[0][0], item[1].name.value))
            try:
                await workflow.wait_condition(changed, timeout=max(at - workflow.now(), _MIN_TIMER))
                continue
            except TimeoutError:
                pass
            if kind == "reminder":
                clock.reminders_sent += 1
                audience: Audience = "reviewers" if clock.name == DeadlineName.APPEAL_DECISION else "unit_staff"
                notice = self._notice(
                    "reminder", audience, key=self._clock_key(clock, f"remind{clock.reminders_sent}"), clock=clock
                )
                if self._notices_beside_steps():
                    await self._record(
                        "reminded",
                        data={"deadline": clock.name.value, "reminder": clock.reminders_sent},
                        notices=[notice],
                    )
                else:
                    await self._notify_legacy(notice)
            else:
                clock.rung += 1
                clock.state = "overdue"
                rung = clock.ladder[clock.rung - 1]
                await self._record(
                    "overdue" if clock.rung == 1 else "escalated",
                    data={"deadline": clock.name.value, "rung": clock.rung, "notify": rung.notify},
                    notices=[
                        self._notice(
                            "escalation", rung.notify, key=self._clock_key(clock, f"rung{clock.rung}"), clock=clock
                        )
                    ],
                )

    def _clock_key(self, clock: Clock, what: str) -> str:
        return f"{clock.name.value}.r{clock.round}.a{clock.arm}.{what}"

    async def _compute_due(self, start: datetime, name: DeadlineName) -> DueDate:
        return await workflow.execute_activity(
            ActivityName.COMPUTE_DUE,
            ComputeDueInput(start=start, spec=self._policy.deadline(name).within),
            result_type=DueDate,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_ACTIVITY_RETRY,
        )

    async def _start_clock(self, name: DeadlineName, start: datetime, due_at: datetime | None = None) -> Clock:
        due = DueDate(at=due_at) if due_at else await self._compute_due(start, name)
        clock = Clock(
            name=name,
            round=self._round,
            started_at=start,
            due_at=due.at,
            provisional=due.provisional,
            rule=self._policy.deadline(name),
            ladder=self._policy.escalation,
        )
        clock.skip_past_reminders(workflow.now())
        self._clocks[name] = clock
        self._clock_version += 1
        return clock

    def _stop_clock(self, name: DeadlineName, state: str | None = None) -> None:
        clock = self._clocks.pop(name, None)
        if clock is not None:
            clock.stop(workflow.now(), state)
            self._finished.append(clock)
            self._clock_version += 1

    def _stop_clocks_of(self, stage: Stage, state: str | None = None) -> None:
        for name in _STAGE_CLOCKS.get(stage, ()):
            self._stop_clock(name, state)

    def _running_clock(self, name: DeadlineName) -> Clock:
        clock = self._clocks.get(name)
        if clock is None:
            raise _reject(f"「{DEADLINE_LABELS_ZH[name]}」时限当前未在计时，不能延期", ErrorType.INVALID_INPUT)
        return clock

    # ---- human steps: the responsible unit ---------------------------------------------------

    @workflow.update
    async def accept(self, inp: AcceptInput) -> CaseSnapshot:
        """签收: the unit takes the case and starts verification."""
        async with self._step(self._validate_accept, inp):
            self._move_to(Stage.VERIFICATION)
            await self._record("accepted", actor=inp.actor, data={"note": inp.note})
            return self._snapshot()

    @accept.validator
    def _validate_accept(self, inp: AcceptInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, Stage.ASSIGNED)

    @workflow.update
    async def log_callback(self, inp: CallbackInput) -> CaseSnapshot:
        """回访: one call to the rater, reached or not. The first one meets the callback deadline."""
        async with self._step(self._validate_log_callback, inp):
            self._callback_done = True
            self._stop_clock(DeadlineName.CALLBACK)
            await self._record("callback", actor=inp.actor, data={"reached": inp.reached, "note": inp.note})
            return self._snapshot()

    @log_callback.validator
    def _validate_log_callback(self, inp: CallbackInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, Stage.VERIFICATION)
        if not self._callback_required() and not self._inp.rater_reachable:
            raise _reject("匿名评价未留联系方式，无需回访", ErrorType.INVALID_INPUT)

    @workflow.update
    async def verify(self, inp: VerificationInput) -> CaseSnapshot:
        """核实结论: valid → rectification; no legal basis → explanation; disputed → appeal."""
        async with self._step(self._validate_verify, inp):
            self._verdict = inp.verdict
            self._stop_clocks_of(Stage.VERIFICATION)
            data = {"verdict": inp.verdict.value, "findings": inp.findings}
            if inp.verdict == Verdict.VALID:
                self._move_to(Stage.RECTIFICATION)
                await self._enter_rectification("verified", actor=inp.actor, data=data)
            elif inp.verdict == Verdict.NO_LEGAL_BASIS:
                self._move_to(Stage.EXPLANATION)
                await self._start_clock(DeadlineName.EXPLANATION, workflow.now())
                await self._record("verified", actor=inp.actor, data=data)
            else:
                self._move_to(Stage.APPEAL_FILING)
                await self._record("verified", actor=inp.actor, data=data)
            return self._snapshot()

    @verify.validator
    def _validate_verify(self, inp: VerificationInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, Stage.VERIFICATION)
        if self._callback_required() and not self._callback_done:
            raise _reject("实名差评须先回访评价人（至少记录一次回访）再提交核实结论")

    @workflow.update
    async def ledger(self, inp: LedgerInput) -> CaseSnapshot:
        """列入台账: replace the immediate-rectification deadline with the unit's own due date."""
        async with self._step(self._validate_ledger, inp):
            self._on_ledger = True
            self._stop_clock(DeadlineName.RECTIFICATION_IMMEDIATE, "replaced")
            await self._start_clock(DeadlineName.RECTIFICATION_LEDGER_MAX, workflow.now(), due_at=inp.due_at)
            await self._record("ledgered", actor=inp.actor, data={"due_at": inp.due_at.isoformat(), "plan": inp.plan})
            return self._snapshot()

    @ledger.validator
    def _validate_ledger(self, inp: LedgerInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, Stage.RECTIFICATION)
        if self._on_ledger:
            raise _reject("已列入台账；如需更多时间请申请延期")
        if self._ledger_latest is None:
            raise _reject("整改时限正在计算，请稍后重试")
        if inp.due_at <= workflow.now():
            raise _reject("台账整改期限须晚于当前时间", ErrorType.INVALID_INPUT)
        if inp.due_at > self._ledger_latest:
            raise _reject(
                f"台账整改期限不得晚于 {self._ledger_latest.isoformat()}（政策上限 "
                f"{self._policy.deadline(DeadlineName.RECTIFICATION_LEDGER_MAX).within}）",
                ErrorType.INVALID_INPUT,
            )

    @workflow.update
    async def rectify(self, inp: RectificationInput) -> CaseSnapshot:
        """整改完成: what was done."""
        async with self._step(self._validate_rectify, inp):
            self._stop_clocks_of(Stage.RECTIFICATION)
            self._move_to(Stage.FEEDBACK)
            await self._start_clock(DeadlineName.FEEDBACK, workflow.now())
            mode = "ledger" if self._on_ledger else "immediate"
            await self._record("rectified", actor=inp.actor, data={"mode": mode, "measures": inp.measures})
            return self._snapshot()

    @rectify.validator
    def _validate_rectify(self, inp: RectificationInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, Stage.RECTIFICATION)

    @workflow.update
    async def explain(self, inp: ExplanationInput) -> CaseSnapshot:
        """解释说明: why the complaint has no legal basis."""
        async with self._step(self._validate_explain, inp):
            self._stop_clocks_of(Stage.EXPLANATION)
            self._move_to(Stage.FEEDBACK)
            await self._start_clock(DeadlineName.FEEDBACK, workflow.now())
            await self._record("explained", actor=inp.actor, data={"explanation": inp.explanation})
            return self._snapshot()

    @explain.validator
    def _validate_explain(self, inp: ExplanationInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, Stage.EXPLANATION)

    @workflow.update
    async def file_appeal(self, inp: AppealInput) -> CaseSnapshot:
        """申诉: the unit contests a mistaken or malicious review, with evidence."""
        async with self._step(self._validate_file_appeal, inp):
            self._move_to(Stage.APPEAL_REVIEW)
            await self._start_clock(DeadlineName.APPEAL_DECISION, workflow.now())
            await self._record(
                "appeal_filed",
                actor=inp.actor,
                data={"reason": inp.reason, "evidence": inp.evidence},
                notices=[self._notice("appeal_filed", "reviewers", key=f"appeal.r{self._round}")],
            )
            return self._snapshot()

    @file_appeal.validator
    def _validate_file_appeal(self, inp: AppealInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, Stage.APPEAL_FILING)

    @workflow.update
    async def give_feedback(self, inp: FeedbackInput) -> CaseSnapshot:
        """反馈: the result as the rater will read it. The workflow then sends it."""
        async with self._step(self._validate_give_feedback, inp):
            self._feedback_message = inp.message
            await self._record("feedback_written", actor=inp.actor, data={"message": inp.message})
            return self._snapshot()

    @give_feedback.validator
    def _validate_give_feedback(self, inp: FeedbackInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, Stage.FEEDBACK)
        if self._feedback_message is not None:
            raise _reject("反馈已提交，正在发送")

    @workflow.update
    async def request_extension(self, inp: ExtensionRequestInput) -> CaseSnapshot:
        """延期申请: ask the supervisor for a later due date."""
        async with self._step(self._validate_request_extension, inp):
            self._pending_extension = inp
            await self._record(
                "extension_requested",
                actor=inp.actor,
                data={"deadline": inp.deadline.value, "new_due_at": inp.new_due_at.isoformat(), "reason": inp.reason},
                notices=[self._notice("extension_requested", "supervisor", key="extension", message=inp.reason)],
            )
            return self._snapshot()

    @request_extension.validator
    def _validate_request_extension(self, inp: ExtensionRequestInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, None)
        if self._pending_extension is not None:
            raise _reject("已有一项延期申请待审批")
        self._validate_new_due(inp.deadline, inp.new_due_at)

    # ---- human steps: supervisors ------------------------------------------------------------

    @workflow.update
    async def decide_extension(self, inp: ExtensionDecisionInput) -> CaseSnapshot:
        """延期审批: approve (the deadline moves, timers re-arm) or refuse."""
        async with self._step(self._validate_decide_extension, inp):
            request = self._pending_extension
            assert request is not None
            self._pending_extension = None
            approved = inp.approve and request.deadline in self._clocks
            if approved:
                self._clocks[request.deadline].rearm(request.new_due_at, workflow.now())
                self._clock_version += 1
            await self._record(
                "extension_approved" if approved else "extension_refused",
                actor=inp.actor,
                data={
                    "deadline": request.deadline.value,
                    "new_due_at": request.new_due_at.isoformat(),
                    "note": inp.note,
                },
            )
            return self._snapshot()

    @decide_extension.validator
    def _validate_decide_extension(self, inp: ExtensionDecisionInput) -> None:
        self._check_fresh(inp)
        self._require_role(inp.actor, Role.SUPERVISOR)
        if self._pending_extension is None:
            raise _reject("没有待审批的延期申请")

    @workflow.update
    async def extend_deadline(self, inp: ExtendInput) -> CaseSnapshot:
        """督办延期: a supervisor moves a running deadline."""
        async with self._step(self._validate_extend_deadline, inp):
            self._clocks[inp.deadline].rearm(inp.new_due_at, workflow.now())
            self._clock_version += 1
            await self._record(
                "deadline_extended",
                actor=inp.actor,
                data={"deadline": inp.deadline.value, "new_due_at": inp.new_due_at.isoformat(), "reason": inp.reason},
            )
            return self._snapshot()

    @extend_deadline.validator
    def _validate_extend_deadline(self, inp: ExtendInput) -> None:
        self._check_fresh(inp)
        self._require_role(inp.actor, Role.SUPERVISOR)
        self._validate_new_due(inp.deadline, inp.new_due_at)

    @workflow.update
    async def remind(self, inp: RemindInput) -> CaseSnapshot:
        """督办提醒: mail the unit now."""
        async with self._step(self._validate_remind, inp):
            await self._record(
                "supervisor_reminded",
                actor=inp.actor,
                data={"message": inp.message},
                notices=[self._notice("supervisor_reminder", "unit_staff", key="remind", message=inp.message)],
            )
            return self._snapshot()

    @remind.validator
    def _validate_remind(self, inp: RemindInput) -> None:
        self._check_fresh(inp)
        self._require_role(inp.actor, Role.SUPERVISOR)
        self._require_open()

    @workflow.update
    async def instruct(self, inp: InstructionInput) -> CaseSnapshot:
        """批示: a supervisor's instruction, recorded and mailed to the unit."""
        async with self._step(self._validate_instruct, inp):
            await self._record(
                "instructed",
                actor=inp.actor,
                data={"instruction": inp.instruction},
                notices=[self._notice("instruction", "unit_staff", key="instruct", message=inp.instruction)],
            )
            return self._snapshot()

    @instruct.validator
    def _validate_instruct(self, inp: InstructionInput) -> None:
        self._check_fresh(inp)
        self._require_role(inp.actor, Role.SUPERVISOR)
        self._require_open()

    @workflow.update
    async def reassign(self, inp: ReassignInput) -> CaseSnapshot:
        """改派: the case moves to another unit and the round starts again there, with fresh deadlines."""
        async with self._step(self._validate_reassign, inp):
            from_unit = self._unit_id
            for name in list(self._clocks):
                self._stop_clock(name, "cancelled")
            self._unit_id = inp.to_unit_id
            self._reset_round_state()
            self._move_to(Stage.ASSIGNED)
            await self._start_round(
                "reassigned",
                actor=inp.actor,
                data={"from_unit": from_unit, "to_unit": inp.to_unit_id, "reason": inp.reason},
                notice=self._notice("reassigned", "unit_staff", key="reassigned", message=inp.reason),
            )
            return self._snapshot()

    @reassign.validator
    def _validate_reassign(self, inp: ReassignInput) -> None:
        self._check_fresh(inp)
        self._require_role(inp.actor, Role.SUPERVISOR)
        if self._stage not in REASSIGNABLE_STAGES or self._feedback_message is not None:
            raise _reject(f"案件处于「{STAGE_LABELS_ZH[self._stage]}」阶段，不能改派")
        if inp.to_unit_id == self._unit_id:
            raise _reject("改派单位与当前承办单位相同", ErrorType.INVALID_INPUT)

    # ---- human steps: reviewers and raters ---------------------------------------------------

    @workflow.update
    async def decide_appeal(self, inp: AppealDecisionInput) -> CaseSnapshot:
        """复核决定: upheld → not adopted (out of statistics); rejected → back to rectification."""
        async with self._step(self._validate_decide_appeal, inp):
            self._stop_clocks_of(Stage.APPEAL_REVIEW)
            data = {"upheld": inp.upheld, "reason": inp.reason}
            if inp.upheld:
                self._outcome = Outcome.NOT_ADOPTED
                self._move_to(Stage.NOT_ADOPTED)
                await self._record(
                    "appeal_upheld",
                    actor=inp.actor,
                    data=data,
                    rating_adopted=False,
                    notices=[
                        self._notice(
                            "not_adopted", "management_office", key=f"not_adopted.r{self._round}", message=inp.reason
                        )
                    ],
                )
            else:
                self._move_to(Stage.RECTIFICATION)
                await self._enter_rectification("appeal_rejected", actor=inp.actor, data=data)
            return self._snapshot()

    @decide_appeal.validator
    def _validate_decide_appeal(self, inp: AppealDecisionInput) -> None:
        self._check_fresh(inp)
        self._require_role(inp.actor, Role.REVIEWER)
        self._require_stage(Stage.APPEAL_REVIEW)

    @workflow.update
    async def rater_respond(self, inp: RaterResponseInput) -> CaseSnapshot:
        """The rater's answer through their one-time link: satisfied or not. The first answer wins."""
        if not self._notices_beside_steps():
            async with self._step(self._validate_rater_respond, inp):
                self._rater_answer = inp.satisfied
                await self._record("rater_responded", actor=inp.actor, data={"satisfied": inp.satisfied})
                return self._snapshot()
        # Taken at once, with no write to wait for: the run loop records it. Another answer may have
        # been accepted since this one was validated, so check again before taking it.
        self._rater_may_answer()
        self._rater_answer = inp.satisfied
        update = workflow.current_update_info()
        self._rater_update_id = update.id if update else "rater"
        return self._snapshot()

    @rater_respond.validator
    def _validate_rater_respond(self, inp: RaterResponseInput) -> None:
        self._check_fresh(inp)
        if inp.actor.role != "rater":
            raise _reject("只有评价人可以确认办理结果", ErrorType.NOT_ALLOWED)
        self._rater_may_answer()

    def _rater_may_answer(self) -> None:
        if self._rater_answer is not None:
            raise _reject("已收到评价人的确认", ErrorType.ALREADY_TAKEN)
        self._require_stage(Stage.RATER_RESPONSE)

    # ---- system -------------------------------------------------------------------------------

    @workflow.update
    async def recompute_provisional(self) -> CaseSnapshot:
        """After an admin loads a year's calendar: recompute deadlines that were only provisional."""
        for name, clock in list(self._clocks.items()):
            if clock.provisional and name != DeadlineName.RECTIFICATION_LEDGER_MAX:
                due = await self._compute_due(clock.started_at, name)
                if not due.provisional:
                    clock.due_at, clock.provisional = due.at, False
                    clock.skip_past_reminders(workflow.now())
                    self._clock_version += 1
                    await self._record(
                        "deadline_recomputed", data={"deadline": name.value, "due_at": due.at.isoformat()}
                    )
        return self._snapshot()

    @workflow.query
    def state(self) -> CaseSnapshot:
        return self._snapshot()

    # ---- helpers ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _step(self, validate: Callable[[Any], None], inp: Any) -> AsyncIterator[None]:
        """Run a human step alone, re-checking its validator: the case may have moved while it waited its turn."""
        # An update can arrive before `run` has written the "opened" event; act only after it.
        await workflow.wait_condition(lambda: self._opened)
        async with self._step_lock:
            self._revalidating = True
            try:
                validate(inp)
            finally:
                self._revalidating = False
            yield

    def _check_fresh(self, inp: Any) -> None:
        """Refuse a step that reaches the workflow after its caller stopped waiting (it was told: not taken)."""
        expires_at = getattr(inp, "expires_at", None)
        if not self._revalidating and expires_at is not None and workflow.now() > expires_at:
            raise _reject("请求等待超时，未办理，请重试", ErrorType.EXPIRED)

    def _require_role(self, actor: Actor, role: Role) -> None:
        if actor.role != role:
            raise _reject("您的角色不能执行此操作", ErrorType.NOT_ALLOWED)

    def _require_open(self) -> None:
        if self._stage in TERMINAL_STAGES:
            raise _reject(f"案件已{STAGE_LABELS_ZH[self._stage]}")

    def _require_stage(self, stage: Stage) -> None:
        if self._stage != stage:
            raise _reject(
                f"案件当前处于「{STAGE_LABELS_ZH[self._stage]}」阶段，此操作须在「{STAGE_LABELS_ZH[stage]}」阶段进行"
            )

    def _require_unit(self, actor: Actor, stage: Stage | None) -> None:
        """A unit step: only the responsible unit's staff, only in the given stage (None: any open stage)."""
        if actor.role != Role.UNIT_STAFF or actor.unit_id != self._unit_id:
            raise _reject("只有承办单位的工作人员可以办理此案件", ErrorType.NOT_ALLOWED)
        if stage is None:
            self._require_open()
        else:
            self._require_stage(stage)

    def _validate_new_due(self, name: DeadlineName, new_due_at: datetime) -> None:
        clock = self._running_clock(name)
        if new_due_at <= clock.due_at or new_due_at <= workflow.now():
            raise _reject("新的期限须晚于当前期限和当前时间", ErrorType.INVALID_INPUT)

    def _move_to(self, stage: Stage) -> None:
        # Set synchronously, before any await, so a concurrent update's validator already sees it.
        if stage not in TRANSITIONS[self._stage]:
            raise _reject(f"案件已进入「{STAGE_LABELS_ZH[self._stage]}」阶段，请刷新后重试")
        self._stage = stage

    def _notice(
        self, kind: NoticeKind, audience: Audience, key: str, clock: Clock | None = None, message: str = ""
    ) -> NoticeRequest:
        """A notice for the next timeline event. Keys without a round or arm are made unique by the event."""
        return NoticeRequest(
            kind=kind,
            audience=audience,
            key=key if clock or ".r" in key else f"{key}.{self._seq + 1}",
            deadline=clock.name if clock else None,
            due_at=clock.due_at if clock else None,
            rung=clock.rung if clock and kind == "escalation" else None,
            message=message,
        )

    async def _notify_legacy(self, notice: NoticeRequest) -> None:
        """Cases started before NOTICES_BESIDE_STEPS: the notify activity, then a "notified" event."""
        kind, audience = notice.kind, notice.audience
        notice_result = await workflow.execute_activity(
            ActivityName.NOTIFY,
            NotifyInput(
                case_id=self._inp.case_id,
                kind=kind,
                audience=audience,
                key=notice.key,
                stage=self._stage,
                round=self._round,
                deadline=notice.deadline,
                due_at=notice.due_at,
                rung=notice.rung,
                message=notice.message,
            ),
            result_type=NoticeResult,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_ACTIVITY_RETRY,
        )
        await self._record("notified", data={"kind": kind, "audience": audience, **notice_result.model_dump()})

    async def _record(
        self,
        action: str,
        *,
        actor: Actor | None = None,
        data: dict[str, Any] | None = None,
        rating_adopted: bool | None = None,
        notices: list[NoticeRequest] | None = None,
        update_id: str | None = None,
    ) -> None:
        """Append a timeline event; the case row gets the whole current state with it.

        Notices are written with the event (one transaction) and sent by the worker's notice relay.
        Cases on the old sequence send them through the notify activity after the event instead.
        """
        legacy = notices if notices and not self._notices_beside_steps() else []
        if update_id is None:
            update = workflow.current_update_info()
            update_id = update.id if update else None
        async with self._record_lock:
            self._seq += 1
            snapshot = self._snapshot()
            self._index(snapshot)
            terminal = self._stage in TERMINAL_STAGES
            event = RecordEventInput(
                case_id=self._inp.case_id,
                event_key=f"{self._seq:04d}-{action}",
                stage=self._stage,
                round=self._round,
                action=action,
                actor=actor.label if actor else SYSTEM_ACTOR,
                at=workflow.now(),
                data=data or {},
                case_fields=CaseFields(
                    stage=snapshot.stage,
                    round=snapshot.round,
                    unit_id=snapshot.unit_id,
                    verdict=snapshot.verdict,
                    outcome=snapshot.outcome,
                    overdue=snapshot.overdue,
                    escalation_rung=snapshot.escalation_rung,
                    deadlines=snapshot.deadlines,
                    closed_at=workflow.now() if terminal else None,
                    rating_adopted=rating_adopted,
                ),
                notices=[] if legacy else (notices or []),
                actor_role=str(actor.role) if actor else "",
                update_id=update_id,
            )
            await workflow.execute_activity(
                ActivityName.RECORD_CASE_EVENT,
                event,
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=_ACTIVITY_RETRY,
            )
        for notice in legacy:
            await self._notify_legacy(notice)

    def _index(self, snapshot: CaseSnapshot) -> None:
        """Keep the Temporal UI's filters (stage, unit, overdue, rung) in step; upsert only on change."""
        values = (snapshot.stage.value, snapshot.unit_id, snapshot.overdue, snapshot.escalation_rung)
        if values != self._indexed:
            self._indexed = values
            workflow.upsert_search_attributes(
                [
                    CASE_STAGE.value_set(values[0]),
                    CASE_UNIT.value_set(values[1]),
                    CASE_OVERDUE.value_set(values[2]),
                    CASE_ESCALATION_RUNG.value_set(values[3]),
                ]
            )

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
            ledger_latest_due=self._ledger_latest,
            rater_answer=self._rater_answer,
        )
