"""The deadline board: starts, stops and moves the clocks of a case and fires their reminders and rungs."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.case.activity_io import (
        Audience,
        ComputeDueInput,
        ComputeDuesInput,
    )
    from models.case.vocabulary import (
        ActivityName,
        Stage,
    )
    from models.deadlines import DueDate, compute_due
    from models.policy import DeadlineName
    from workflows.case.clock import Clock


from workflows.case.state import _MIN_TIMER
from workflows.case.timeline import Timeline

# Which clocks run in which stage; leaving the stage stops them.
_STAGE_CLOCKS: dict[Stage, tuple[DeadlineName, ...]] = {
    Stage.ASSIGNED: (DeadlineName.CALLBACK, DeadlineName.VERIFICATION),
    Stage.VERIFICATION: (DeadlineName.CALLBACK, DeadlineName.VERIFICATION),
    Stage.RECTIFICATION: (DeadlineName.RECTIFICATION_IMMEDIATE, DeadlineName.RECTIFICATION_LEDGER_MAX),
    Stage.EXPLANATION: (DeadlineName.EXPLANATION,),
    Stage.FEEDBACK: (DeadlineName.FEEDBACK,),
    Stage.APPEAL_REVIEW: (DeadlineName.APPEAL_DECISION,),
}


class DeadlineBoard(Timeline):
    async def _watch_clocks(self) -> None:
        """Fire reminders and escalation rungs of every running clock, in time order, until the case ends."""
        while self._running():
            version = self._clock_version
            upcoming = [(event, clock) for clock in self._clocks.values() if (event := clock.next_event())]
            changed = lambda v=version: self._clock_version != v or not self._running()  # noqa: E731
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
        if self._steps_in_one_task():
            return (await self._compute_dues(start, [name]))[0]
        due: DueDate = await self._run_activity(
            ActivityName.COMPUTE_DUE,
            ComputeDueInput(start=start, spec=self._policy.deadline(name).within),
            result_type=DueDate,
        )
        return due

    async def _compute_dues(self, start: datetime, names: list[DeadlineName]) -> list[DueDate]:
        """Due times of deadlines that start together (current sequence only).

        A natural-time rule (15 天, 24 小时) is arithmetic, done here; the working-day rules need the
        calendar, which lives in the database: one local activity looks them all up.
        """
        specs = [self._policy.deadline(name).within for name in names]
        walked = [spec for spec in specs if spec.unit == "working_days"]
        looked_up: list[DueDate] = []
        if walked:
            looked_up = await self._run_activity(
                ActivityName.COMPUTE_DUES, ComputeDuesInput(start=start, specs=walked), result_type=list[DueDate]
            )
        found = iter(looked_up)
        return [next(found) if spec.unit == "working_days" else compute_due(start, spec) for spec in specs]

    async def _start_clock(self, name: DeadlineName, start: datetime, due: DueDate | None = None) -> Clock:
        """Start a clock; its due time computed from the policy's rule unless given (台账, a batch look-up)."""
        if due is None:
            due = await self._compute_due(start, name)
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
