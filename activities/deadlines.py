"""Deadline look-ups: the working-day calendar lives here, outside the deterministic workflow."""

from __future__ import annotations

from temporalio import activity

from models.case_types import ActivityName, ComputeDueInput
from models.deadlines import ChineseStatutoryCalendar, DueDate, WorkdayCalendar, compute_due


class DeadlineActivities:
    def __init__(self, calendar: WorkdayCalendar | None = None) -> None:
        self._calendar = calendar or ChineseStatutoryCalendar()

    @activity.defn(name=ActivityName.COMPUTE_DUE)
    async def compute_due(self, inp: ComputeDueInput) -> DueDate:
        """The due timestamp of a deadline that starts at inp.start (workflow time, so tests can skip time)."""
        return compute_due(inp.start, inp.spec, self._calendar)
