"""Guards of every step: who may act, in which stage, until when; one step at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.case.vocabulary import (
        DEADLINE_LABELS_ZH,
        STAGE_LABELS_ZH,
        TERMINAL_STAGES,
        TRANSITIONS,
        Actor,
        ErrorType,
        Stage,
    )
    from models.policy import DeadlineName
    from models.roles import Role
    from workflows.case.clock import Clock


from workflows.case.state import CaseState


def _reject(message: str, kind: str = ErrorType.WRONG_STAGE) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


class Guards(CaseState):
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

    def _running_clock(self, name: DeadlineName) -> Clock:
        clock = self._clocks.get(name)
        if clock is None:
            raise _reject(f"「{DEADLINE_LABELS_ZH[name]}」时限当前未在计时，不能延期", ErrorType.INVALID_INPUT)
        return clock
