"""The rectification ledger (整改台账): rectifications units put on the ledger, for supervisors, with its CSV export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import exists, func
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.cases.scope import scope_conditions, summary_query
from api.deps import SessionDep
from models.calendar import load_calendar
from models.case.records import Case, CaseEvent
from models.policy import DeadlineName
from models.users import User
from pages import words
from pages.csv_export import audit_export, csv_response
from pages.render import china_time, render, time_left_zh
from pages.routing import PageRoute
from pages.supervision import (
    EXPORT_LIMIT,
    PAGE_SIZE,
    IdFilter,
    LedgerState,
    Listed,
    PageNumber,
    SupervisorUser,
    after_events,
    deadlines_named,
    query_string,
    unit_choices,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@dataclass
class LedgerRow:
    listed: Listed
    event: CaseEvent  # the 列入台账 event: the plan and the due date the unit set
    set_due: datetime
    extended_due: datetime | None  # the ledger deadline now, when a supervisor moved it
    state: LedgerState
    rectified_at: datetime | None


async def _ledger(session: AsyncSession, user: User, unit_id: int | Literal[""], state: LedgerState | Literal[""],
                  limit: int, offset: int) -> tuple[int, list[LedgerRow]]:  # fmt: skip
    """Each case's latest 列入台账 and where it stands now, filtered by unit and state in SQL."""
    led = aliased(CaseEvent)
    rectified = exists(after_events(led, ("rectified",)))
    cancelled = exists(after_events(led, ("reassigned", "cannot_rectify_approved")))
    late = col(Case.overdue) == True  # noqa: E712 - on the ledger, the ledger deadline is the only one running
    by_state: dict[str, list[Any]] = {
        "": [],
        "rectified": [rectified],
        "cancelled": [~rectified, cancelled],
        "overdue": [~rectified, ~cancelled, late],
        "on_time": [~rectified, ~cancelled, ~late],
    }
    conditions = [*await scope_conditions(session, user), col(led.action) == "ledgered", *by_state[state]]
    conditions.append(~exists(after_events(led, ("ledgered",))))
    if unit_id != "":
        conditions.append(Case.unit_id == unit_id)
    count = select(func.count()).select_from(Case).join(led, col(led.case_id) == Case.id).where(*conditions)
    total = (await session.exec(count)).one()
    rectified_at = after_events(led, ("rectified",), pick=lambda e: func.min(e.at)).scalar_subquery()
    query = (
        summary_query()
        .add_columns(led, cancelled.label("cancelled"), rectified_at.label("rectified_at"))
        .join(led, col(led.case_id) == Case.id)
        .where(*conditions)
        .order_by(col(led.id).desc())
        .limit(limit)
        .offset(offset)
    )
    calendar = await load_calendar(session)
    rows = []
    for *summary, event, was_cancelled, done_at in (await session.exec(query)).all():
        case: Case = summary[0]
        row_state: LedgerState = "rectified" if done_at else "cancelled" if was_cancelled else "on_time"
        row_state = "overdue" if row_state == "on_time" and case.overdue else row_state
        set_due = datetime.fromisoformat(event.data["due_at"])
        views = deadlines_named(case, DeadlineName.RECTIFICATION_LEDGER_MAX) if event.round == case.round else []
        now_due = views[-1].due_at if views else set_due
        left = time_left_zh(now_due, calendar) if row_state in ("on_time", "overdue") else ""
        extended = now_due if now_due != set_due else None
        rows.append(LedgerRow(Listed.of(summary, left), event, set_due, extended, row_state, done_at))
    return total, rows


@router.get("/ledger", response_class=HTMLResponse)
async def ledger(
    request: Request, session: SessionDep, user: SupervisorUser, unit_id: IdFilter = "",
    state: LedgerState | Literal[""] = "", page: PageNumber = 1,
) -> HTMLResponse:  # fmt: skip
    """整改台账: rectifications the units put on the ledger, their plans, due dates and where they stand."""
    total, rows = await _ledger(session, user, unit_id, state, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    filters = {"unit_id": unit_id, "state": state}
    return render(
        request, "supervision/ledger.html.j2", title="整改台账", rows=rows, total=total, page=page,
        pages=max(1, -(-total // PAGE_SIZE)), filters=filters, query=query_string(**filters),
        units=await unit_choices(session, user), states=list(words.LEDGER_STATE_LABELS_ZH.items()),
        state_label=words.LEDGER_STATE_LABELS_ZH.get,
    )  # fmt: skip


@router.get("/ledger.csv")
async def ledger_csv(
    request: Request, session: SessionDep, user: SupervisorUser, unit_id: IdFilter = "",
    state: LedgerState | Literal[""] = "",
) -> Response:  # fmt: skip
    """The ledger as filtered, for Excel; the export is audited."""
    total, rows = await _ledger(session, user, unit_id, state, EXPORT_LIMIT, 0)
    cells = [
        (r.listed.case.id, r.listed.item_name, r.listed.record_no, r.listed.unit_name, r.event.data.get("plan", ""),
         china_time(r.set_due), china_time(r.extended_due), words.LEDGER_STATE_LABELS_ZH[r.state],
         china_time(r.event.at), china_time(r.rectified_at))
        for r in rows
    ]  # fmt: skip
    await audit_export(session, request, user, "ledger", {"unit_id": unit_id, "state": state}, len(cells), total)
    header = "工单编号 事项名称 办件编号 承办单位 整改计划 单位设定的整改期限 延期后的整改期限 状态 列入台账时间 整改完成时间"
    return csv_response("整改台账", header, cells)
