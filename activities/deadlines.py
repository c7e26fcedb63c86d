"""Deadline look-ups: the working-day calendar lives here, outside the deterministic workflow."""

from __future__ import annotations

from temporalio import activity

from models.calendar import load_calendar
from models.case.activity_io import ComputeDueInput, ComputeDuesInput
from models.case.vocabulary import ActivityName
from models.db import Database
from models.deadlines import DueDate, compute_due


class DeadlineActivities:
    def __init__(self, db: Database) -> None:
        self._db = db

    @activity.defn(name=ActivityName.COMPUTE_DUE)
    async def compute_due(self, inp: ComputeDueInput) -> DueDate:
        """The due timestamp of a deadline that starts at inp.start (workflow time, so tests can skip time).

        Years an admin loaded take precedence over the packaged State Council table.
        """
        async with self._db.session() as session:
            calendar = await load_calendar(session)
        return compute_due(inp.start, inp.spec, calendar)

    @activity.defn(name=ActivityName.COMPUTE_DUES)
    async def compute_dues(self, inp: ComputeDuesInput) -> list[DueDate]:
        """The due timestamps of several deadlines that start at inp.start, on one read of the calendar."""
        async with self._db.session() as session:
            calendar = await load_calendar(session)
        return [compute_due(inp.start, spec, calendar) for spec in inp.specs]
