"""Starting a round (at a unit, after reassignment or reopening) and entering rectification."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.case.activity_io import (
        NoticeRequest,
    )
    from models.case.vocabulary import (
        Actor,
    )
    from models.policy import DeadlineName


from workflows.case.board import DeadlineBoard
from workflows.case.guards import Guards


class Rounds(DeadlineBoard, Guards):
    async def _start_round(
        self,
        action: str,
        actor: Actor | None = None,
        data: dict[str, Any] | None = None,
        notice: NoticeRequest | None = None,
    ) -> None:
        """Start (or restart) a round at the current unit: callback and verification clocks from now."""
        now = workflow.now()
        if self._steps_in_one_task():
            names = [DeadlineName.VERIFICATION] + ([DeadlineName.CALLBACK] if self._callback_required() else [])
            for name, due in zip(names, await self._compute_dues(now, names), strict=True):
                await self._start_clock(name, now, due=due)
        else:
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

    async def _enter_rectification(
        self, action: str, actor: Actor | None = None, data: dict[str, Any] | None = None
    ) -> None:
        now = workflow.now()
        self._on_ledger = False
        if self._steps_in_one_task():
            ledger_max, immediate = await self._compute_dues(
                now, [DeadlineName.RECTIFICATION_LEDGER_MAX, DeadlineName.RECTIFICATION_IMMEDIATE]
            )
            self._ledger_latest = ledger_max.at
            await self._start_clock(DeadlineName.RECTIFICATION_IMMEDIATE, now, due=immediate)
        else:
            self._ledger_latest = (await self._compute_due(now, DeadlineName.RECTIFICATION_LEDGER_MAX)).at
            await self._start_clock(DeadlineName.RECTIFICATION_IMMEDIATE, now)
        await self._record(
            action, actor=actor, data={**(data or {}), "ledger_latest_due": self._ledger_latest.isoformat()}
        )
