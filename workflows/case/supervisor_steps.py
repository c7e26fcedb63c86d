"""Supervisors' steps (督办): decide extensions, extend, remind, instruct, reassign."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.case.step_inputs import (
        CannotRectifyDecisionInput,
        ExtendInput,
        ExtensionDecisionInput,
        InstructionInput,
        ReassignInput,
        RemindInput,
    )
    from models.case.vocabulary import (
        DEADLINE_LABELS_ZH,
        REASSIGNABLE_STAGES,
        STAGE_LABELS_ZH,
        CaseSnapshot,
        ErrorType,
        Outcome,
        Stage,
    )
    from models.roles import Role


from workflows.case.guards import _reject
from workflows.case.rounds import Rounds


class SupervisorSteps(Rounds):
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
        request, clock = self._pending_extension, self._clocks.get(self._pending_extension.deadline)
        if (
            inp.approve
            and clock is not None
            and (request.new_due_at <= clock.due_at or request.new_due_at <= workflow.now())
        ):
            # The deadline moved (or time passed) since the unit asked: approving would shorten it.
            raise _reject("所申请的期限已不晚于当前期限或当前时间，请驳回后由承办单位重新申请", ErrorType.INVALID_INPUT)

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
        clock = self._clocks.get(inp.deadline)
        if clock is not None and clock.extended and clock.due_at == inp.new_due_at:
            # The same extension sent again (a second tab, another key): it was taken, the date is not wrong.
            raise _reject(
                f"「{DEADLINE_LABELS_ZH[inp.deadline]}」时限已延期至该时间，无需重复延期", ErrorType.ALREADY_TAKEN
            )
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
            # Also what a reassignment sent twice (two tabs, two keys) meets: the case is already there.
            raise _reject("案件已由该单位承办，无需改派", ErrorType.ALREADY_TAKEN)

    @workflow.update
    async def decide_cannot_rectify(self, inp: CannotRectifyDecisionInput) -> CaseSnapshot:
        """无法整改审批: approved → closed as cannot-rectify, the rater told why; refused → rectify as before."""
        async with self._step(self._validate_decide_cannot_rectify, inp):
            request = self._pending_cannot_rectify
            assert request is not None
            self._pending_cannot_rectify = None
            if not inp.approve:
                await self._record("cannot_rectify_refused", actor=inp.actor, data={"note": inp.note})
                return self._snapshot()
            self._stop_clocks_of(Stage.RECTIFICATION, "cancelled")
            self._outcome = Outcome.CANNOT_RECTIFY
            self._move_to(Stage.CLOSED)
            told = self._rater_can_be_told()
            explanation = self._notice(
                "cannot_rectify", "rater", key=f"cannot_rectify.r{self._round}", message=request.explanation
            )
            await self._record(
                "cannot_rectify_approved",
                actor=inp.actor,
                data={"note": inp.note, "explanation": request.explanation, "rater_told": told},
                notices=[explanation] if told else [],
            )
            return self._snapshot()

    @decide_cannot_rectify.validator
    def _validate_decide_cannot_rectify(self, inp: CannotRectifyDecisionInput) -> None:
        self._check_fresh(inp)
        self._require_role(inp.actor, Role.SUPERVISOR)
        self._require_stage(Stage.RECTIFICATION)
        if self._pending_cannot_rectify is None:
            raise _reject("没有待审批的无法整改申请")
