"""Reviewers' and raters' steps: the appeal decision (复核), the rater's answer, and system updates."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.case.step_inputs import (
        AppealDecisionInput,
        RaterResponseInput,
    )
    from models.case.vocabulary import (
        CaseSnapshot,
        ErrorType,
        Outcome,
        Stage,
    )
    from models.policy import DeadlineName
    from models.roles import Role


from workflows.case.guards import _reject
from workflows.case.rounds import Rounds


class ReviewSteps(Rounds):
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
        if self._rater_silent:
            raise _reject("确认期限已过，本轮已按未答复处理")
        if self._rater_answer is not None:
            raise _reject("已收到评价人的确认", ErrorType.ALREADY_TAKEN)
        self._require_stage(Stage.RATER_RESPONSE)

    @workflow.update
    async def recompute_provisional(self) -> CaseSnapshot:
        """After an admin loads a year's calendar: recompute deadlines that were only provisional."""
        for name, clock in list(self._clocks.items()):
            if clock.provisional and name != DeadlineName.RECTIFICATION_LEDGER_MAX:
                due = await self._compute_due(clock.started_at, name)
                # A step may have moved or stopped the clock while the date was computed (an extension):
                # that newer decision stands.
                if self._clocks.get(name) is clock and clock.provisional and not due.provisional:
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
