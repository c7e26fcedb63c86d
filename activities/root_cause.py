"""Writes a root-cause rectification's timeline and read model. Idempotent: a retried activity writes nothing twice.

One transaction per event: the timeline row, the rectification row's new state, the notices to staff,
for a person's step its audit record, for the end of the rectification the release of its cases
(`open_case_id` cleared, so they may join another), and for `accepted` the result on every linked
case with one notice to each rater who can be told (activities/root_cause_notices.py).

The API writes the rectification row and starts its workflow inside one transaction, committing once
the start succeeded; the first event may therefore come before the row is visible. It is retried
until then. A row that is still missing after OPENING_GRACE, or that belongs to another workflow,
means the API's transaction never committed (it answered 503): the workflow then ends by itself.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio import activity

from activities.root_cause_notices import feed_back_result, write_staff_notices
from models.audit import audit
from models.db import Database, utcnow
from models.root_cause import RootCauseEvent, RootCauseLink, RootCauseRectification
from models.root_cause_io import (
    OPEN_ROOT_CAUSE_STAGES,
    RootCauseActivity,
    RootCauseEventInput,
    RootCauseRecorded,
    RootCauseStage,
)

OPENING_GRACE = timedelta(minutes=10)


class RowNotCommittedYet(Exception):
    """The rectification row is not visible yet: the API's transaction is still open. Retried."""


class RootCauseActivities:
    def __init__(
        self, db: Database, notices_written: asyncio.Event | None = None, office_hours_enforced: bool = True
    ) -> None:
        self._db = db
        self._office_hours_enforced = office_hours_enforced
        # Set after a commit that wrote notices, so this worker's notice relay sends them at once.
        self._notices_written = notices_written or asyncio.Event()

    @activity.defn(name=RootCauseActivity.RECORD)
    async def record_root_cause_event(self, inp: RootCauseEventInput) -> RootCauseRecorded:
        """Append one timeline event and bring the rectification to the state it carries."""
        async with self._db.session() as session:
            row = await session.get(RootCauseRectification, inp.rectification_id)
            if row is None or row.workflow_id != inp.workflow_id:
                if row is None and utcnow() - inp.at < OPENING_GRACE:
                    raise RowNotCommittedYet(f"root-cause rectification {inp.rectification_id} not visible yet")
                return RootCauseRecorded(stored=False)
            if await _written(session, inp):
                return RootCauseRecorded(stored=True)
            before: dict[str, Any] = {"stage": row.stage.value}
            _apply(row, inp)
            data = dict(inp.data)
            if inp.notices:
                data["notices"] = await write_staff_notices(session, row, inp, utcnow(), self._office_hours_enforced)
            if inp.action == "accepted":
                data["feedback"] = await feed_back_result(session, row, inp)
            if inp.stage not in OPEN_ROOT_CAUSE_STAGES:
                # Accepted or withdrawn: its cases are free to join another rectification.
                await (await session.connection()).execute(
                    update(RootCauseLink).where(col(RootCauseLink.rectification_id) == row.id).values(open_case_id=None)
                )
            session.add(
                RootCauseEvent(
                    rectification_id=inp.rectification_id,
                    event_key=inp.event_key,
                    stage=inp.stage,
                    action=inp.action,
                    actor=inp.actor,
                    at=inp.at,
                    data=data,
                )
            )
            if inp.actor_role:
                audit(
                    session,
                    actor=inp.actor,
                    actor_role=inp.actor_role,
                    action=f"root_cause.{inp.action}",
                    target_type="root_cause",
                    target_id=inp.rectification_id,
                    unit_id=row.unit_id,
                    reason=str(inp.data.get("reason") or inp.data.get("note") or ""),
                    before=before,
                    after={**inp.data, "stage": inp.stage.value},
                )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                # A concurrent attempt of the same activity won the unique (rectification, event_key) race.
                await session.rollback()
                if not await _written(session, inp):
                    raise
                return RootCauseRecorded(stored=True)
        if inp.notices or inp.action == "accepted":
            self._notices_written.set()
        return RootCauseRecorded(stored=True, written=True)


async def _written(session: Any, inp: RootCauseEventInput) -> bool:
    found = await session.exec(
        select(RootCauseEvent.id).where(
            RootCauseEvent.rectification_id == inp.rectification_id, RootCauseEvent.event_key == inp.event_key
        )
    )
    return found.first() is not None


def _apply(row: RootCauseRectification, inp: RootCauseEventInput) -> None:
    row.stage = inp.stage
    row.due_at = inp.due_at
    row.overdue = inp.overdue
    row.escalation_rung = inp.escalation_rung
    if inp.action == "result_submitted":
        row.result = str(inp.data.get("result", ""))
    if inp.stage in (RootCauseStage.ACCEPTED, RootCauseStage.WITHDRAWN):
        row.closed_at = inp.at
    if row.workflow_started_at is None:
        row.workflow_started_at = inp.at
    row.updated_at = utcnow()
