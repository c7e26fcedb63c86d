"""The notify and send-rater-feedback activities of cases started before notices rode on timeline events.

Such cases still call these two activities (their recorded histories must replay), but nothing is
sent from inside them any more: they write the notice intents, exactly as a timeline event does
(activities/notices.py), wake the worker's notice relay and return at once, so even these cases
never wait on a mail server. New cases do not call them.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.notices import write_notices
from models.case.activity_io import FeedbackNoticeInput, NoticeRequest, NoticeResult, NotifyInput
from models.case.records import Case
from models.case.vocabulary import ActivityName
from models.db import Database, utcnow


class NotificationActivities:
    def __init__(self, db: Database, notices_written: asyncio.Event, office_hours_enforced: bool = True) -> None:
        self._db = db
        self._office_hours_enforced = office_hours_enforced
        self._notices_written = notices_written

    @activity.defn(name=ActivityName.NOTIFY)
    async def notify(self, inp: NotifyInput) -> NoticeResult:
        """Queue one notice to an audience about a case."""
        request = NoticeRequest(
            kind=inp.kind,
            audience=inp.audience,
            key=inp.key,
            deadline=inp.deadline,
            due_at=inp.due_at,
            rung=inp.rung,
            message=inp.message,
        )
        return await self._queue(inp.case_id, inp.round, inp.stage.value, request)

    @activity.defn(name=ActivityName.SEND_RATER_FEEDBACK)
    async def send_rater_feedback(self, inp: FeedbackNoticeInput) -> NoticeResult:
        """Queue the result (反馈) to the rater by email and SMS, with the round's one-time answer link."""
        request = NoticeRequest(
            kind="feedback",
            audience="rater",
            key=f"feedback.r{inp.round}",
            message=inp.message,
            respond_by=inp.respond_by,
        )
        return await self._queue(inp.case_id, inp.round, "feedback", request)

    async def _queue(self, case_id: int, round_: int, stage: str, request: NoticeRequest) -> NoticeResult:
        async with self._db.session() as session:
            case = await session.get(Case, case_id)
            if case is None:
                raise RuntimeError(f"case {case_id} does not exist")
            [summary] = await write_notices(
                session,
                case,
                round_,
                stage,
                "",
                [request],
                now=utcnow(),
                office_hours_enforced=self._office_hours_enforced,
            )
            await session.commit()
        self._notices_written.set()
        return NoticeResult(
            sent=bool(summary["recipients"]),
            recipients=summary["recipients"],
            channels=summary["channels"],
            reason=summary.get("reason", "queued"),
        )
