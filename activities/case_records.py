"""Writes the case timeline and read model. Idempotent: a retried activity writes nothing twice."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from models.case_types import ActivityName, RecordEventInput
from models.cases import Case, CaseEvent
from models.db import Database, utcnow


class CaseRecordActivities:
    def __init__(self, db: Database) -> None:
        self._db = db

    @activity.defn(name=ActivityName.RECORD_CASE_EVENT)
    async def record_case_event(self, inp: RecordEventInput) -> bool:
        """Append one timeline event and apply its column changes to the case. False if it was already written."""
        async with self._db.session() as session:
            existing = await session.exec(
                select(CaseEvent.id).where(CaseEvent.case_id == inp.case_id, CaseEvent.event_key == inp.event_key)
            )
            if existing.first() is not None:
                return False
            case = await session.get(Case, inp.case_id)
            if case is None:
                raise RuntimeError(f"case {inp.case_id} does not exist")
            session.add(
                CaseEvent(
                    case_id=inp.case_id,
                    event_key=inp.event_key,
                    stage=inp.stage,
                    action=inp.action,
                    actor=inp.actor,
                    at=inp.at,
                    data=inp.data,
                )
            )
            for column, value in inp.case_fields.model_dump(exclude_none=True).items():
                setattr(case, column, value)
            if case.workflow_started_at is None:
                case.workflow_started_at = inp.at
            case.updated_at = utcnow()
            session.add(case)
            try:
                await session.commit()
            except IntegrityError:
                # A concurrent attempt of the same activity won the unique (case_id, event_key) race.
                await session.rollback()
                return False
            return True
