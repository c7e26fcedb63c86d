"""The case workflow (差评工单流程): one durable workflow per bad rating.

The whole state machine is here. Human steps arrive as Updates; each validator checks the stage
and who is acting before anything is written, so a rejected click leaves no trace in the history.
Automatic steps (deadline, overdue notice, feedback mail, closing) run in `run`.

    assigned ──accept──▶ verification ──verify(valid)──────────▶ rectification ──rectify──▶ feedback
                         (log_callback ×n)  └─verify(no_legal_basis)─▶ explanation ──explain──┘   │
                                                                              give_feedback ▼
                                                               (mail to rater) ──▶ closed

The callback deadline (回访时限) is a durable timer armed when the case opens: if no callback is
logged and verification is not done by then, the case is marked overdue and the supervising
unit's supervisors are mailed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.case_types import (
        STAGE_LABELS_ZH,
        SYSTEM_ACTOR,
        TRANSITIONS,
        AcceptInput,
        ActivityName,
        Actor,
        CallbackInput,
        CaseFields,
        CaseSnapshot,
        CaseWorkflowInput,
        ComputeDueInput,
        DueDate,
        ErrorType,
        ExplanationInput,
        FeedbackInput,
        FeedbackNoticeInput,
        NoticeResult,
        OverdueNoticeInput,
        RecordEventInput,
        RectificationInput,
        Stage,
        Verdict,
        VerificationInput,
    )

_ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Database and SMTP outages are waited out rather than failing the case: retry forever, backing off.
_ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
_UNIT_STAFF = "unit_staff"


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow:
    @workflow.init
    def __init__(self, inp: CaseWorkflowInput) -> None:
        self._inp = inp
        self._stage = Stage.ASSIGNED
        self._seq = 0
        # Timeline writes go out one at a time, in the order the workflow decided them.
        self._record_lock = asyncio.Lock()
        self._callback_due: DueDate | None = None
        self._callback_done = False
        self._overdue = False
        self._verdict: Verdict | None = None
        self._feedback_message: str | None = None
        self._opened = False

    # ---- automatic steps -------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CaseWorkflowInput) -> CaseSnapshot:
        opened_at = workflow.now()
        self._callback_due = await workflow.execute_activity(
            ActivityName.COMPUTE_DUE,
            ComputeDueInput(start=opened_at, spec=inp.callback_deadline),
            result_type=DueDate,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_ACTIVITY_RETRY,
        )
        await self._record(
            "opened",
            data={
                "level": inp.level,
                "callback_deadline": str(inp.callback_deadline),
                "callback_due_at": self._callback_due.at.isoformat(),
                "callback_due_provisional": self._callback_due.provisional,
                "callback_required": inp.real_name,
            },
            fields=CaseFields(
                stage=Stage.ASSIGNED,
                callback_due_at=self._callback_due.at,
                callback_due_provisional=self._callback_due.provisional,
            ),
        )
        self._opened = True

        await self._watch_callback_deadline()

        await workflow.wait_condition(lambda: self._feedback_message is not None)
        assert self._feedback_message is not None
        notice = await workflow.execute_activity(
            ActivityName.SEND_RATER_FEEDBACK,
            FeedbackNoticeInput(case_id=inp.case_id, message=self._feedback_message),
            result_type=NoticeResult,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_ACTIVITY_RETRY,
        )
        await self._record("feedback_sent", data=notice.model_dump())

        self._move_to(Stage.CLOSED)
        await self._record("closed", fields=CaseFields(stage=Stage.CLOSED, closed_at=workflow.now()))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._snapshot()

    def _callback_deadline_met(self) -> bool:
        return self._callback_done or self._stage not in (Stage.ASSIGNED, Stage.VERIFICATION)

    async def _watch_callback_deadline(self) -> None:
        """Wait for the callback or the deadline; on the deadline mark the case overdue and mail supervisors."""
        assert self._callback_due is not None
        remaining = self._callback_due.at - workflow.now()
        try:
            await workflow.wait_condition(self._callback_deadline_met, timeout=max(remaining, timedelta(seconds=1)))
            return
        except TimeoutError:
            pass
        self._overdue = True
        await self._record(
            "overdue",
            data={"deadline": "callback", "due_at": self._callback_due.at.isoformat()},
            fields=CaseFields(overdue=True),
        )
        notice = await workflow.execute_activity(
            ActivityName.NOTIFY_CALLBACK_OVERDUE,
            OverdueNoticeInput(
                case_id=self._inp.case_id, stage=self._stage, deadline="callback", due_at=self._callback_due.at
            ),
            result_type=NoticeResult,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_ACTIVITY_RETRY,
        )
        await self._record("supervisor_notified", data=notice.model_dump())

    # ---- human steps (Updates) -------------------------------------------------------------

    @workflow.update
    async def accept(self, inp: AcceptInput) -> CaseSnapshot:
        """签收: the unit takes the case and starts verification."""
        await self._opened_before_acting()
        self._move_to(Stage.VERIFICATION)
        await self._record("accepted", actor=inp.actor, data={"note": inp.note}, fields=CaseFields(stage=self._stage))
        return self._snapshot()

    @accept.validator
    def _validate_accept(self, inp: AcceptInput) -> None:
        self._require(inp.actor, Stage.ASSIGNED)

    @workflow.update
    async def log_callback(self, inp: CallbackInput) -> CaseSnapshot:
        """回访: one call to the rater, reached or not."""
        await self._opened_before_acting()
        self._callback_done = True
        await self._record("callback", actor=inp.actor, data={"reached": inp.reached, "note": inp.note})
        return self._snapshot()

    @log_callback.validator
    def _validate_log_callback(self, inp: CallbackInput) -> None:
        self._require(inp.actor, Stage.VERIFICATION)

    @workflow.update
    async def verify(self, inp: VerificationInput) -> CaseSnapshot:
        """核实结论: valid → rectification; no legal basis → explanation."""
        await self._opened_before_acting()
        self._verdict = inp.verdict
        self._move_to(Stage.RECTIFICATION if inp.verdict == Verdict.VALID else Stage.EXPLANATION)
        await self._record(
            "verified",
            actor=inp.actor,
            data={"verdict": inp.verdict.value, "findings": inp.findings},
            fields=CaseFields(stage=self._stage, verdict=inp.verdict),
        )
        return self._snapshot()

    @verify.validator
    def _validate_verify(self, inp: VerificationInput) -> None:
        self._require(inp.actor, Stage.VERIFICATION)
        if self._inp.real_name and not self._callback_done:
            raise ApplicationError(
                "实名差评须先回访评价人（至少记录一次回访）再提交核实结论", type=ErrorType.WRONG_STAGE
            )

    @workflow.update
    async def rectify(self, inp: RectificationInput) -> CaseSnapshot:
        """整改: what was done (立行立改 or 台账)."""
        await self._opened_before_acting()
        self._move_to(Stage.FEEDBACK)
        await self._record(
            "rectified",
            actor=inp.actor,
            data={"mode": inp.mode.value, "measures": inp.measures},
            fields=CaseFields(stage=self._stage),
        )
        return self._snapshot()

    @rectify.validator
    def _validate_rectify(self, inp: RectificationInput) -> None:
        self._require(inp.actor, Stage.RECTIFICATION)

    @workflow.update
    async def explain(self, inp: ExplanationInput) -> CaseSnapshot:
        """解释说明: why the complaint has no legal basis."""
        await self._opened_before_acting()
        self._move_to(Stage.FEEDBACK)
        await self._record(
            "explained", actor=inp.actor, data={"explanation": inp.explanation}, fields=CaseFields(stage=self._stage)
        )
        return self._snapshot()

    @explain.validator
    def _validate_explain(self, inp: ExplanationInput) -> None:
        self._require(inp.actor, Stage.EXPLANATION)

    @workflow.update
    async def give_feedback(self, inp: FeedbackInput) -> CaseSnapshot:
        """反馈: the result as the rater will read it. The workflow then mails it and closes the case."""
        await self._opened_before_acting()
        if self._feedback_message is not None:
            raise ApplicationError("反馈已提交，案件正在办结", type=ErrorType.WRONG_STAGE)
        self._feedback_message = inp.message
        await self._record("feedback_written", actor=inp.actor, data={"message": inp.message})
        return self._snapshot()

    @give_feedback.validator
    def _validate_give_feedback(self, inp: FeedbackInput) -> None:
        self._require(inp.actor, Stage.FEEDBACK)
        if self._feedback_message is not None:
            raise ApplicationError("反馈已提交，案件正在办结", type=ErrorType.WRONG_STAGE)

    @workflow.query
    def state(self) -> CaseSnapshot:
        return self._snapshot()

    # ---- helpers ---------------------------------------------------------------------------

    async def _opened_before_acting(self) -> None:
        # An update can arrive before `run` has written the "opened" event; act only after it.
        await workflow.wait_condition(lambda: self._opened)

    def _require(self, actor: Actor, stage: Stage) -> None:
        """Reject an update made in the wrong stage or by someone outside the responsible unit."""
        if actor.role != _UNIT_STAFF or actor.unit_id != self._inp.unit_id:
            raise ApplicationError("只有承办单位的工作人员可以办理此案件", type=ErrorType.NOT_ALLOWED)
        if self._stage != stage:
            raise ApplicationError(
                f"案件当前处于「{STAGE_LABELS_ZH[self._stage]}」阶段，此操作须在「{STAGE_LABELS_ZH[stage]}」阶段进行",
                type=ErrorType.WRONG_STAGE,
            )

    def _move_to(self, stage: Stage) -> None:
        # Set synchronously, before any await, so a concurrent update's validator already sees it.
        if stage not in TRANSITIONS[self._stage]:
            # Two updates validated against the same stage: the second one loses here.
            raise ApplicationError(
                f"案件已进入「{STAGE_LABELS_ZH[self._stage]}」阶段，请刷新后重试", type=ErrorType.WRONG_STAGE
            )
        self._stage = stage

    async def _record(
        self,
        action: str,
        *,
        actor: Actor | None = None,
        data: dict[str, Any] | None = None,
        fields: CaseFields | None = None,
    ) -> None:
        self._seq += 1
        event = RecordEventInput(
            case_id=self._inp.case_id,
            event_key=f"{self._seq:04d}-{action}",
            stage=self._stage,
            action=action,
            actor=actor.label if actor else SYSTEM_ACTOR,
            at=workflow.now(),
            data=data or {},
            case_fields=fields or CaseFields(),
        )
        async with self._record_lock:
            await workflow.execute_activity(
                ActivityName.RECORD_CASE_EVENT,
                event,
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=_ACTIVITY_RETRY,
            )

    def _snapshot(self) -> CaseSnapshot:
        return CaseSnapshot(
            case_id=self._inp.case_id,
            stage=self._stage,
            callback_due_at=self._callback_due.at if self._callback_due else None,
            callback_due_provisional=self._callback_due.provisional if self._callback_due else False,
            callback_done=self._callback_done,
            overdue=self._overdue,
            verdict=self._verdict,
        )
