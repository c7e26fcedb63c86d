"""The timeline writer: every change goes to the database with the case's whole state, its notices and
its search attributes, one event at a time and in decision order."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.case.activity_io import (
        Audience,
        CaseFields,
        NoticeKind,
        NoticeRequest,
        NoticeResult,
        NotifyInput,
        RecordEventInput,
    )
    from models.case.vocabulary import (
        SYSTEM_ACTOR,
        TERMINAL_STAGES,
        ActivityName,
        Actor,
        CaseSnapshot,
    )
    from models.search_attributes import CASE_ESCALATION_RUNG, CASE_OVERDUE, CASE_STAGE, CASE_UNIT
    from workflows.case.clock import Clock


from workflows.case.state import _ACTIVITY_RETRY, _ACTIVITY_TIMEOUT, CaseState


class Timeline(CaseState):
    def _notice(
        self, kind: NoticeKind, audience: Audience, key: str, clock: Clock | None = None, message: str = ""
    ) -> NoticeRequest:
        """A notice for the next timeline event. Keys without a round or arm are made unique by the event."""
        return NoticeRequest(
            kind=kind,
            audience=audience,
            key=key if clock or ".r" in key else f"{key}.{self._seq + 1}",
            deadline=clock.name if clock else None,
            due_at=clock.due_at if clock else None,
            rung=clock.rung if clock and kind == "escalation" else None,
            message=message,
        )

    async def _notify_legacy(self, notice: NoticeRequest) -> None:
        """Cases started before NOTICES_BESIDE_STEPS: the notify activity, then a "notified" event."""
        kind, audience = notice.kind, notice.audience
        notice_result = await workflow.execute_activity(
            ActivityName.NOTIFY,
            NotifyInput(
                case_id=self._inp.case_id,
                kind=kind,
                audience=audience,
                key=notice.key,
                stage=self._stage,
                round=self._round,
                deadline=notice.deadline,
                due_at=notice.due_at,
                rung=notice.rung,
                message=notice.message,
            ),
            result_type=NoticeResult,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_ACTIVITY_RETRY,
        )
        await self._record("notified", data={"kind": kind, "audience": audience, **notice_result.model_dump()})

    async def _record(
        self,
        action: str,
        *,
        actor: Actor | None = None,
        data: dict[str, Any] | None = None,
        rating_adopted: bool | None = None,
        notices: list[NoticeRequest] | None = None,
        update_id: str | None = None,
    ) -> None:
        """Append a timeline event; the case row gets the whole current state with it.

        Notices are written with the event (one transaction) and sent by the worker's notice relay.
        Cases on the old sequence send them through the notify activity after the event instead.
        """
        legacy = notices if notices and not self._notices_beside_steps() else []
        if update_id is None:
            update = workflow.current_update_info()
            update_id = update.id if update else None
        async with self._record_lock:
            self._seq += 1
            snapshot = self._snapshot()
            self._index(snapshot)
            terminal = self._stage in TERMINAL_STAGES
            event = RecordEventInput(
                case_id=self._inp.case_id,
                event_key=f"{self._seq:04d}-{action}",
                stage=self._stage,
                round=self._round,
                action=action,
                actor=actor.label if actor else SYSTEM_ACTOR,
                at=workflow.now(),
                data=data or {},
                case_fields=CaseFields(
                    stage=snapshot.stage,
                    round=snapshot.round,
                    unit_id=snapshot.unit_id,
                    verdict=snapshot.verdict,
                    outcome=snapshot.outcome,
                    overdue=snapshot.overdue,
                    escalation_rung=snapshot.escalation_rung,
                    deadlines=snapshot.deadlines,
                    closed_at=workflow.now() if terminal else None,
                    rating_adopted=rating_adopted,
                ),
                notices=[] if legacy else (notices or []),
                actor_role=str(actor.role) if actor else "",
                update_id=update_id,
            )
            await self._run_activity(ActivityName.RECORD_CASE_EVENT, event)
        for notice in legacy:
            await self._notify_legacy(notice)

    def _index(self, snapshot: CaseSnapshot) -> None:
        """Keep the Temporal UI's filters (stage, unit, overdue, rung) in step; upsert only on change."""
        values = (snapshot.stage.value, snapshot.unit_id, snapshot.overdue, snapshot.escalation_rung)
        if values != self._indexed:
            self._indexed = values
            workflow.upsert_search_attributes(
                [
                    CASE_STAGE.value_set(values[0]),
                    CASE_UNIT.value_set(values[1]),
                    CASE_OVERDUE.value_set(values[2]),
                    CASE_ESCALATION_RUNG.value_set(values[3]),
                ]
            )
