"""Writes the case timeline and read model. Idempotent: a retried activity writes nothing twice."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from models.case_activity_types import RecordEventInput
from models.case_types import ActivityName
from models.cases import Case, CaseEvent
from models.db import Database, utcnow
from models.ratings import Rating


class CaseRecordActivities:
    def __init__(self, db: Database) -> None:
        self._db = db

    @activity.defn(name=ActivityName.RECORD_CASE_EVENT)
    async def record_case_event(self, inp: RecordEventInput) -> bool:
        """Append one timeline event and bring the case row to the state it carries. False if already written."""
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
                    round=inp.round,
                    action=inp.action,
                    actor=inp.actor,
                    at=inp.at,
                    data=inp.data,
                )
            )
            fields = inp.case_fields
            for column in (
                "stage",
                "round",
                "unit_id",
                "verdict",
                "outcome",
                "overdue",
                "escalation_rung",
                "closed_at",
            ):
                value = getattr(fields, column)
                if value is not None:
                    setattr(case, column, value)
            if fields.deadlines is not None:
                case.deadlines = [d.model_dump(mode="json") for d in fields.deadlines]
                running = [d for d in fields.deadlines if d.state in ("running", "overdue")]
                case.next_due_at = min((d.due_at for d in running), default=None)
                case.has_provisional_deadline = any(d.provisional for d in running)
            if fields.rating_adopted is not None:
                rating = await session.get(Rating, case.rating_id)
                assert rating is not None
                rating.adopted = fields.rating_adopted
                session.add(rating)
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
