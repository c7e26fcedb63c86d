"""The root-cause rectification workflow (根源整改): one durable workflow per rectification a supervisor opens.

    rectifying ─submit_result─▶ result_submitted ─accept_result─▶ accepted (the result goes to every rater)
        ▲   report_progress          │
        └──────── return_result ─────┘            withdraw (any open stage) ─▶ withdrawn

Human steps are Updates with validators, as in the case workflow: a refused step leaves no trace,
and each step re-checks its validator once it has its turn, so two clicks never both take effect.
The deadline is a case-style Clock (workflows/case/clock.py) on the unit's working-day calendar
(the case workflow's compute_due activity): reminders before it, the profile's escalation ladder
after it; submitting the result stops it, a return re-arms it. Every change is one
record_root_cause_event activity (activities/root_cause.py), which also feeds the accepted result
back to the linked cases. The linked cases' own workflows are not touched: they keep running.
No PII: the workflow knows cases by id only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.case.activity_io import ComputeDueInput
    from models.case.vocabulary import SYSTEM_ACTOR, ActivityName, Actor, ErrorType
    from models.deadlines import DueDate
    from models.policy import DeadlineName
    from models.roles import Role
    from models.root_cause_io import (
        OPEN_ROOT_CAUSE_STAGES,
        ROOT_CAUSE_STAGE_LABELS_ZH,
        AcceptanceInput,
        ProgressInput,
        ResultInput,
        ReturnInput,
        RootCauseActivity,
        RootCauseEventInput,
        RootCauseNotice,
        RootCauseRecorded,
        RootCauseSnapshot,
        RootCauseStage,
        RootCauseWorkflowInput,
        WithdrawalInput,
    )
    from workflows.case.clock import Clock
    from workflows.case.state import _ACTIVITY_RETRY, _ACTIVITY_TIMEOUT, _MIN_TIMER

# A Clock names the case deadline it times only for the case page's view of it; a root-cause clock has
# no such view, and its notice keys are made here, so the name is a label and nothing reads it as a case's.
ROOT_CAUSE_CLOCK = cast(DeadlineName, "root_cause")


def _reject(message: str, kind: str = ErrorType.WRONG_STAGE) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name="RootCauseWorkflow")
class RootCauseWorkflow:
    @workflow.init
    def __init__(self, inp: RootCauseWorkflowInput) -> None:
        self._inp = inp
        self._policy = inp.policy.profile
        self._stage = RootCauseStage.RECTIFYING
        self._seq = 0
        self._clock: Clock | None = None
        self._clock_version = 0
        self._opened = False
        self._abandoned = False  # no rectification row is this workflow's: the API call that started it failed
        self._result = ""
        self._returned = 0
        self._revalidating = False
        self._step_lock = asyncio.Lock()
        self._record_lock = asyncio.Lock()

    @workflow.run
    async def run(self, inp: RootCauseWorkflowInput) -> RootCauseSnapshot:
        now = workflow.now()
        due = await workflow.execute_activity(
            ActivityName.COMPUTE_DUE,
            ComputeDueInput(start=now, spec=inp.within),
            result_type=DueDate,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_ACTIVITY_RETRY,
        )
        self._clock = Clock(
            name=ROOT_CAUSE_CLOCK,
            round=1,
            started_at=now,
            due_at=due.at,
            provisional=due.provisional,
            rule=self._policy.root_cause.deadline,
            ladder=self._policy.escalation,
        )
        stored = await self._record(
            "opened",
            actor=None,
            data={"cases": inp.case_ids, "within": str(inp.within), "opened_by": inp.opened_by.label},
            notices=[RootCauseNotice(kind="root_cause_opened", audience="unit_staff", key="opened", due_at=due.at)],
        )
        if not stored:
            self._abandoned = True
            return self._snapshot()
        self._opened = True
        watch = asyncio.create_task(self._watch_clock())
        await workflow.wait_condition(lambda: self._stage not in OPEN_ROOT_CAUSE_STAGES)
        self._clock_version += 1
        await watch
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._snapshot()

    @workflow.query
    def state(self) -> RootCauseSnapshot:
        return self._snapshot()

    # ---- the unit's steps ---------------------------------------------------------------------------

    @workflow.update
    async def report_progress(self, inp: ProgressInput) -> RootCauseSnapshot:
        """整改进展: the unit records what it has done so far."""
        async with self._step(self._validate_progress, inp):
            await self._record("progress", actor=inp.actor, data={"note": inp.note})
            return self._snapshot()

    @report_progress.validator
    def _validate_progress(self, inp: ProgressInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor)
        self._require_stage(RootCauseStage.RECTIFYING)

    @workflow.update
    async def submit_result(self, inp: ResultInput) -> RootCauseSnapshot:
        """整改结果: the unit reports the result; the deadline is met (or met late) and a supervisor decides."""
        async with self._step(self._validate_result, inp):
            self._stage = RootCauseStage.RESULT_SUBMITTED
            self._result = inp.result
            clock = self._running_clock()
            clock.stop(workflow.now())
            self._clock_version += 1
            await self._record(
                "result_submitted",
                actor=inp.actor,
                data={"result": inp.result, "measures": list(inp.measures), "deadline": clock.state},
                notices=[self._notice("root_cause_result_submitted", "supervisor", f"submitted.{self._returned}")],
            )
            return self._snapshot()

    @submit_result.validator
    def _validate_result(self, inp: ResultInput) -> None:
        self._check_fresh(inp)
        self._require_unit(inp.actor)
        self._require_stage(RootCauseStage.RECTIFYING)

    # ---- the supervisor's steps ---------------------------------------------------------------------

    @workflow.update
    async def accept_result(self, inp: AcceptanceInput) -> RootCauseSnapshot:
        """验收通过: the result is fed back to every rater of the linked cases who can be told."""
        async with self._step(self._validate_acceptance, inp):
            self._stage = RootCauseStage.ACCEPTED
            await self._record("accepted", actor=inp.actor, data={"note": inp.note}, result=self._result)
            return self._snapshot()

    @accept_result.validator
    def _validate_acceptance(self, inp: AcceptanceInput) -> None:
        self._check_fresh(inp)
        self._require_supervisor(inp.actor)
        if self._stage == RootCauseStage.ACCEPTED:
            raise _reject("整改结果已验收，结果已反馈评价人", ErrorType.ALREADY_TAKEN)
        self._require_stage(RootCauseStage.RESULT_SUBMITTED)

    @workflow.update
    async def return_result(self, inp: ReturnInput) -> RootCauseSnapshot:
        """退回整改: back to the unit, with the deadline it had or a new one."""
        async with self._step(self._validate_return, inp):
            clock = self._running_clock()
            due_at = inp.due_at or clock.due_at
            self._stage = RootCauseStage.RECTIFYING
            self._returned += 1
            clock.rearm(due_at, workflow.now())
            self._clock_version += 1
            await self._record(
                "returned",
                actor=inp.actor,
                data={"reason": inp.reason, "due_at": due_at.isoformat(), "new_deadline": inp.due_at is not None},
                notices=[self._notice("root_cause_returned", "unit_staff", f"returned.{self._returned}", inp.reason)],
            )
            return self._snapshot()

    @return_result.validator
    def _validate_return(self, inp: ReturnInput) -> None:
        self._check_fresh(inp)
        self._require_supervisor(inp.actor)
        self._require_stage(RootCauseStage.RESULT_SUBMITTED)
        now = workflow.now()
        if inp.due_at is not None and inp.due_at <= now:
            raise _reject("新的整改期限须晚于当前时间", ErrorType.INVALID_INPUT)
        if inp.due_at is None and self._running_clock().due_at <= now:
            raise _reject("原整改期限已过，退回时须设定新的整改期限（due_at）", ErrorType.INVALID_INPUT)

    @workflow.update
    async def withdraw(self, inp: WithdrawalInput) -> RootCauseSnapshot:
        """撤销: the rectification ends without a result; its cases may join another."""
        async with self._step(self._validate_withdrawal, inp):
            self._stage = RootCauseStage.WITHDRAWN
            clock = self._running_clock()
            if clock.state in ("running", "overdue"):
                clock.stop(workflow.now(), "cancelled")
            self._clock_version += 1
            await self._record(
                "withdrawn",
                actor=inp.actor,
                data={"reason": inp.reason},
                notices=[self._notice("root_cause_withdrawn", "unit_staff", "withdrawn", inp.reason)],
            )
            return self._snapshot()

    @withdraw.validator
    def _validate_withdrawal(self, inp: WithdrawalInput) -> None:
        self._check_fresh(inp)
        self._require_supervisor(inp.actor)
        if self._stage not in OPEN_ROOT_CAUSE_STAGES:
            raise _reject(f"根源整改已{ROOT_CAUSE_STAGE_LABELS_ZH[self._stage]}，不能撤销")

    # ---- the deadline: reminders before it, escalation rungs after it --------------------------------

    async def _watch_clock(self) -> None:
        """Fire the clock's reminders and rungs in time order while the unit rectifies."""
        while self._stage in OPEN_ROOT_CAUSE_STAGES:
            version = self._clock_version
            changed = lambda v=version: self._clock_version != v or self._stage not in OPEN_ROOT_CAUSE_STAGES  # noqa: E731
            clock = self._clock
            upcoming = clock.next_event() if clock and self._stage == RootCauseStage.RECTIFYING else None
            if clock is None or upcoming is None:
                await workflow.wait_condition(changed)
                continue
            at, kind = upcoming
            try:
                await workflow.wait_condition(changed, timeout=max(at - workflow.now(), _MIN_TIMER))
                continue
            except TimeoutError:
                pass
            if kind == "reminder":
                clock.reminders_sent += 1
                key = f"a{clock.arm}.remind{clock.reminders_sent}"
                await self._record(
                    "reminded",
                    data={"reminder": clock.reminders_sent},
                    notices=[self._notice("root_cause_reminder", "unit_staff", key)],
                )
            else:
                clock.rung += 1
                clock.state = "overdue"
                rung = clock.ladder[clock.rung - 1]
                await self._record(
                    "overdue" if clock.rung == 1 else "escalated",
                    data={"rung": clock.rung, "notify": rung.notify},
                    notices=[self._notice("root_cause_escalation", rung.notify, f"a{clock.arm}.rung{clock.rung}")],
                )

    # ---- guards -------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _step(self, validate: Callable[[Any], None], inp: Any) -> AsyncIterator[None]:
        """Run a step alone, re-checking its validator: the rectification may have moved while it waited."""
        await workflow.wait_condition(lambda: self._opened or self._abandoned)
        async with self._step_lock:
            self._revalidating = True
            try:
                validate(inp)
            finally:
                self._revalidating = False
            yield

    def _check_fresh(self, inp: Any) -> None:
        """Refuse a step that reaches the workflow after its caller stopped waiting (it was told: not taken)."""
        if self._abandoned:
            raise _reject("根源整改不存在（创建未完成）")
        if not self._revalidating and inp.expires_at is not None and workflow.now() > inp.expires_at:
            raise _reject("请求等待超时，未办理，请重试", ErrorType.EXPIRED)

    def _require_unit(self, actor: Actor) -> None:
        if actor.role != Role.UNIT_STAFF or actor.unit_id != self._inp.unit_id:
            raise _reject("只有承办单位的工作人员可以办理此根源整改", ErrorType.NOT_ALLOWED)

    def _require_supervisor(self, actor: Actor) -> None:
        if actor.role != Role.SUPERVISOR:
            raise _reject("只有督办人员可以验收、退回或撤销根源整改", ErrorType.NOT_ALLOWED)

    def _require_stage(self, stage: RootCauseStage) -> None:
        if self._stage != stage:
            raise _reject(
                f"根源整改当前为「{ROOT_CAUSE_STAGE_LABELS_ZH[self._stage]}」，"
                f"此操作须在「{ROOT_CAUSE_STAGE_LABELS_ZH[stage]}」时进行"
            )

    def _running_clock(self) -> Clock:
        assert self._clock is not None  # set before the rectification opens to any step
        return self._clock

    # ---- the timeline ------------------------------------------------------------------------------

    def _notice(self, kind: Any, audience: Any, key: str, message: str = "") -> RootCauseNotice:
        clock = self._clock
        return RootCauseNotice(
            kind=kind,
            audience=audience,
            key=key,
            due_at=clock.due_at if clock else None,
            rung=clock.rung if clock and kind == "root_cause_escalation" else None,
            message=message,
        )

    def _snapshot(self) -> RootCauseSnapshot:
        clock = self._clock
        return RootCauseSnapshot(
            rectification_id=self._inp.rectification_id,
            stage=self._stage,
            due_at=clock.due_at if clock else None,
            overdue=bool(clock and clock.overdue and self._stage in OPEN_ROOT_CAUSE_STAGES),
            escalation_rung=clock.rung if clock else 0,
            returned=self._returned,
        )

    async def _record(
        self,
        action: str,
        *,
        actor: Actor | None = None,
        data: dict[str, Any] | None = None,
        notices: list[RootCauseNotice] | None = None,
        result: str | None = None,
    ) -> bool:
        """Append a timeline event with the rectification's whole state. False: no row is this workflow's."""
        async with self._record_lock:
            self._seq += 1
            snapshot = self._snapshot()
            recorded = await workflow.execute_activity(
                RootCauseActivity.RECORD,
                RootCauseEventInput(
                    rectification_id=self._inp.rectification_id,
                    workflow_id=workflow.info().workflow_id,
                    event_key=f"{self._seq:04d}-{action}",
                    action=action,
                    actor=actor.label if actor else SYSTEM_ACTOR,
                    actor_role=str(actor.role) if actor else "",
                    at=workflow.now(),
                    stage=self._stage,
                    due_at=snapshot.due_at,
                    overdue=snapshot.overdue,
                    escalation_rung=snapshot.escalation_rung,
                    data=data or {},
                    notices=notices or [],
                    result=result,
                ),
                result_type=RootCauseRecorded,
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                # The opening event waits for the API's transaction to commit (activities/root_cause.py).
                retry_policy=_ACTIVITY_RETRY,
            )
            return recorded.stored
