"""Writes the case timeline and read model. Idempotent: a retried activity writes nothing twice.

One transaction per event: the timeline row, the case row's new state, the notices the event causes
(activities/notices.py), for a person's step its audit record and the completion of the request
that asked for it, and for the event that finishes a case the push of its result upstream
(models/upstream.py). So a step is audited exactly once however its HTTP call ended, and a notice
or a report exists exactly when its event does.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio import activity

from activities.notices import write_notices
from models.audit import audit
from models.case.activity_io import CaseFields, RecordEventInput
from models.case.records import Case, CaseEvent
from models.case.requests import CaseStepRequest
from models.case.vocabulary import TERMINAL_STAGES, ActivityName
from models.db import Database, utcnow
from models.rater_links import FEEDBACK_RESPONSE, RaterLink
from models.ratings import Rating
from models.upstream import enqueue_case_result

_CASE_COLUMNS = ("stage", "round", "unit_id", "verdict", "outcome", "overdue", "escalation_rung", "closed_at")


class CaseRecordActivities:
    def __init__(
        self,
        db: Database,
        notices_written: asyncio.Event | None = None,
        office_hours_enforced: bool = True,
        upstream_reporting: bool = False,
    ) -> None:
        self._db = db
        self._office_hours_enforced = office_hours_enforced
        self._upstream_reporting = upstream_reporting
        # Set after a commit that wrote notices, so this worker's notice relay sends them at once.
        self._notices_written = notices_written or asyncio.Event()

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
            before: dict[str, Any] = {"stage": case.stage.value, "unit_id": case.unit_id}
            apply_case_fields(case, inp.case_fields, inp.action, inp.at)
            data = dict(inp.data)
            if inp.notices:
                data["notices"] = await write_notices(
                    session,
                    case,
                    inp.round,
                    inp.stage.value,
                    inp.event_key,
                    inp.notices,
                    now=utcnow(),
                    office_hours_enforced=self._office_hours_enforced,
                )
            if inp.case_fields.rating_adopted is not None:
                rating = await session.get(Rating, case.rating_id)
                assert rating is not None
                rating.adopted = inp.case_fields.rating_adopted
                session.add(rating)
            if inp.action == "rater_responded":
                await _mark_link_answered(session, case, inp)
            if case.stage in TERMINAL_STAGES and before["stage"] not in TERMINAL_STAGES:
                # The case's result is reported upstream exactly when the case finishes (docs/upstream.md).
                await enqueue_case_result(session, inp.case_id, self._upstream_reporting)
            session.add(
                CaseEvent(
                    case_id=inp.case_id,
                    event_key=inp.event_key,
                    stage=inp.stage,
                    round=inp.round,
                    action=inp.action,
                    actor=inp.actor,
                    at=inp.at,
                    data=data,
                )
            )
            request = await _complete_request(session, inp) if inp.update_id else None
            if inp.actor_role:
                # Named like the step the person asked for (case.accept, case.rater_response...).
                audit(
                    session,
                    actor=inp.actor,
                    actor_role=inp.actor_role,
                    action=f"case.{request.action if request else inp.action}",
                    target_type="case",
                    target_id=inp.case_id,
                    unit_id=before["unit_id"],
                    before=before,
                    after={**inp.data, "stage": case.stage.value, "unit_id": case.unit_id},
                    client=request.client if request else "",
                )
            session.add(case)
            try:
                await session.commit()
            except IntegrityError:
                # A concurrent attempt of the same activity won the unique (case_id, event_key) race;
                # any other constraint failure must fail the activity, not vanish.
                await session.rollback()
                written = await session.exec(
                    select(CaseEvent.id).where(CaseEvent.case_id == inp.case_id, CaseEvent.event_key == inp.event_key)
                )
                if written.first() is None:
                    raise
                return False
        if inp.notices:
            self._notices_written.set()
        return True


def apply_case_fields(case: Case, fields: CaseFields, action: str, at: datetime) -> None:
    """Bring the case row's derived columns to the state an event carries (also used by runtime/reconcile)."""
    for column in _CASE_COLUMNS:
        value = getattr(fields, column)
        if value is not None:
            setattr(case, column, value)
    if fields.deadlines is not None:
        case.deadlines = [d.model_dump(mode="json") for d in fields.deadlines]
        running = [d for d in fields.deadlines if d.state in ("running", "overdue")]
        case.next_due_at = min((d.due_at for d in running), default=None)
        case.has_provisional_deadline = any(d.provisional for d in running)
    if action in ("reopened", "reassigned"):
        case.verdict = None  # the new round's verification has not happened yet
    if case.workflow_started_at is None:
        case.workflow_started_at = at
    case.updated_at = utcnow()


async def _complete_request(session: Any, inp: RecordEventInput) -> CaseStepRequest | None:
    """Mark the HTTP request that asked for this step as done; its step name and caller go into the audit."""
    request = (await session.exec(select(CaseStepRequest).where(CaseStepRequest.update_id == inp.update_id))).first()
    if request is None:
        return None
    await (await session.connection()).execute(
        update(CaseStepRequest)
        .where(col(CaseStepRequest.id) == request.id)
        .values(completed_at=utcnow(), event_key=inp.event_key)
    )
    return request


async def _mark_link_answered(session: Any, case: Case, inp: RecordEventInput) -> None:
    """The workflow's answer is the answer: the round's link shows it, whoever wrote first."""
    link = (
        await session.exec(
            select(RaterLink).where(
                RaterLink.case_id == case.id, RaterLink.round == inp.round, RaterLink.purpose == FEEDBACK_RESPONSE
            )
        )
    ).first()
    if link is not None:
        link.answer_satisfied = inp.data.get("satisfied")
        link.used_at = link.used_at or inp.at
        session.add(link)
