"""The responsible unit's steps (承办单位): accept, call back, verify, rectify or explain or appeal, feed back."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.case.step_inputs import (
        AcceptInput,
        AppealInput,
        CallbackInput,
        CannotRectifyRequestInput,
        ExplanationInput,
        ExtensionRequestInput,
        FeedbackInput,
        LedgerInput,
        RectificationInput,
        VerificationInput,
    )
    from models.case.vocabulary import (
        CaseSnapshot,
        ErrorType,
        Stage,
        Verdict,
    )
    from models.deadlines import DueDate
    from models.policy import DeadlineName


from workflows.case.guards import _reject
from workflows.case.rounds import Rounds


class UnitSteps(Rounds):
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
            data: dict[str, Any] = {"verdict": inp.verdict.value, "findings": inp.findings}
            # Only when given: updates recorded before the judgement existed carry none.
            if inp.judgement is not None:
                data["judgement"] = inp.judgement.value
            if inp.evidence:
                data["evidence"] = list(inp.evidence)
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
            await self._start_clock(DeadlineName.RECTIFICATION_LEDGER_MAX, workflow.now(), due=DueDate(at=inp.due_at))
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

    @workflow.update
    async def request_cannot_rectify(self, inp: CannotRectifyRequestInput) -> CaseSnapshot:
        """无法整改申请: the unit asks a supervisor to agree that the problem cannot be rectified."""
        async with self._step(self._validate_request_cannot_rectify, inp):
            self._pending_cannot_rectify = inp
            await self._record(
                "cannot_rectify_requested",
                actor=inp.actor,
                data={"reasons": inp.reasons, "explanation": inp.explanation},
                notices=[
                    self._notice("cannot_rectify_requested", "supervisor", key="cannot_rectify", message=inp.reasons)
                ],
            )
            return self._snapshot()

    @request_cannot_rectify.validator
    def _validate_request_cannot_rectify(self, inp: CannotRectifyRequestInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor, Stage.RECTIFICATION)
        if self._pending_cannot_rectify is not None:
            raise _reject("已有一项无法整改申请待审批", ErrorType.ALREADY_TAKEN)
