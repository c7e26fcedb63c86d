"""The working-day calendar (工作日历): an admin loads or corrects a year, then provisional deadlines are recomputed."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlmodel import col, select

from api.cases.steps import StepError, system_update
from api.deps import CurrentAdmin, CurrentUser, SessionDep, TemporalDep, audit_user_action
from api.errors import api_error
from api.params import Year
from models.calendar import CalendarYear, CalendarYearBody, load_calendar
from models.case.records import Case
from models.case.vocabulary import TERMINAL_STAGES
from workflows.case import CaseWorkflow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"])


class CalendarYearRead(BaseModel):
    year: int
    source: str
    holidays: list[date]
    workdays: list[date]
    official: bool  # True: loaded here or known to the packaged State Council table


class CalendarLoadResult(CalendarYearRead):
    cases_recomputed: int
    cases_failed: list[int]


@router.get("/{year}", response_model=CalendarYearRead)
async def get_calendar_year(year: Year, session: SessionDep, _user: CurrentUser) -> CalendarYearRead:
    """The holidays and 调休 workdays in force for a year, and whether they are official."""
    row = await session.get(CalendarYear, year)
    if row is not None:
        return CalendarYearRead(
            year=year, source=row.source, holidays=row.holidays, workdays=row.workdays, official=True
        )
    calendar = await load_calendar(session)
    first = date(year, 1, 1)
    days = [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]
    answers = {d: calendar.is_workday(d) for d in days}
    return CalendarYearRead(
        year=year,
        source="chinese-calendar package" if all(known for _, known in answers.values()) else "none: weekends only",
        holidays=[d for d, (work, _) in answers.items() if not work and d.weekday() < 5],
        workdays=[d for d, (work, _) in answers.items() if work and d.weekday() >= 5],
        official=all(known for _, known in answers.values()),
    )


@router.put("/{year}", response_model=CalendarLoadResult)
async def load_calendar_year(
    year: Year,
    body: CalendarYearBody,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    admin: CurrentAdmin,
) -> CalendarLoadResult:
    """Load or correct a year, then recompute every open case's provisional deadlines."""
    try:
        body.check_year(year)
    except ValueError as exc:
        raise api_error(422, "bad_dates", str(exc), field="holidays") from None
    existing = await session.get(CalendarYear, year)
    row = existing or CalendarYear(year=year, source=body.source)
    audit_user_action(
        session,
        request,
        admin,
        "calendar.load",
        "calendar",
        year,
        reason=body.source,
        before={"holidays": existing.holidays, "workdays": existing.workdays} if existing else {},
        after=body.model_dump(mode="json"),
    )
    row.holidays = sorted(d.isoformat() for d in body.holidays)
    row.workdays = sorted(d.isoformat() for d in body.workdays)
    row.source, row.loaded_by = body.source, admin.id
    session.add(row)
    await session.commit()

    rows = (
        await session.exec(
            select(Case.id, Case.workflow_id).where(
                Case.has_provisional_deadline == True,  # noqa: E712
                col(Case.stage).not_in(TERMINAL_STAGES),
            )
        )
    ).all()
    # A primary key is never null: the filter only tells the type checker so.
    open_provisional = [(case_id, wf) for case_id, wf in rows if case_id is not None]
    failed: list[int] = []
    if open_provisional:

        async def recompute(case_id: int, workflow_id: str) -> None:
            try:
                await system_update(temporal, workflow_id, CaseWorkflow.recompute_provisional, wait_seconds=30)
            except StepError as exc:  # report and go on; loading the year again retries the failed ones
                log.warning("case %s: provisional deadlines not recomputed: %s", case_id, exc.code)
                failed.append(case_id)

        await asyncio.gather(*(recompute(case_id, wf) for case_id, wf in open_provisional))
    return CalendarLoadResult(
        year=year,
        source=row.source,
        holidays=body.holidays,
        workdays=body.workdays,
        official=True,
        cases_recomputed=len(open_provisional) - len(failed),
        cases_failed=sorted(failed),
    )
