"""Supervisors' pages (督办): the board of overdue cases, requests awaiting approval, the ledger, CSV exports.

Which cases a supervisor sees is the API's scope (api/cases/scope.py); this module only adds the
board's and the ledger's own conditions to it. Every step (remind, reassign, extend, instruct,
approve) is a form on the case page (pages/cases.py), which each row links to.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field
from sqlalchemy import exists, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.cases.scope import scope_conditions, summary_query
from api.deps import SessionDep, audit_user_action, visible_unit_ids
from api.params import MAX_ID, MAX_OFFSET
from models.calendar import load_calendar
from models.case.records import Case, CaseEvent
from models.case.vocabulary import DEADLINE_LABELS_ZH, STAGE_LABELS_ZH, TERMINAL_STAGES, DeadlineView, Stage
from models.db import utcnow
from models.deadlines import CHINA_TZ
from models.organisation import Unit
from models.policy import DeadlineName
from models.roles import Role
from models.users import User
from pages import words
from pages.render import ROLE_LABELS_ZH, china_time, render, time_left_zh
from pages.routing import PageRoute
from pages.session import PageUser

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE, PENDING_LIMIT, EXPORT_LIMIT = 20, 100, 10_000


def role_page(role: Role) -> Any:
    """A page dependency: the signed-in person if their role is `role`; otherwise a 403 page saying whose page it is."""

    async def gate(user: PageUser) -> User:
        if user.role != role:
            message = f"此页面仅供{ROLE_LABELS_ZH[role]}使用。"
            raise HTTPException(403, detail={"code": "wrong_role", "message": message})
        return user

    return Depends(gate)


SupervisorUser = Annotated[User, role_page(Role.SUPERVISOR)]
# A filter left at "全部" arrives as an empty value: no filter, not a bad request.
IdFilter = Annotated[int, Field(ge=1, le=MAX_ID)] | Literal[""]
RungFilter = Annotated[int, Field(ge=1, le=5)] | Literal[""]
StageFilter = Stage | Literal[""]
PageNumber = Annotated[int, Query(ge=1, le=MAX_OFFSET // PAGE_SIZE)]
BoardSort = Literal["rung", "unit", "due"]
LedgerState = Literal["on_time", "overdue", "rectified", "cancelled"]


@dataclass
class Listed:
    """One case as a supervisor's list shows it: the case row and the names the list needs."""

    case: Case
    unit_name: str
    item_name: str
    record_no: str
    time_left: str = ""

    @classmethod
    def of(cls, row: Sequence[Any], time_left: str = "") -> Listed:
        """From a row of summary_query(): case, unit name, item name, record number (then the rating)."""
        return cls(row[0], row[1], row[2], row[3], time_left)


def query_string(**filters: object) -> str:
    return urlencode({key: value for key, value in filters.items() if value not in ("", None)})


async def unit_choices(session: AsyncSession, user: User) -> list[tuple[int, str]]:
    """The units a filter may name: those the person's scope covers."""
    ids = await visible_unit_ids(session, user)
    query = select(Unit.id, Unit.name).order_by(col(Unit.id))
    if ids is not None:
        query = query.where(col(Unit.id).in_(ids))
    return [(uid, name) for uid, name in (await session.exec(query)).all() if uid is not None]


def _after(event: Any, actions: Sequence[str], pick: Callable[[Any], Any] = lambda e: e.id) -> Any:
    """A correlated subquery over the same case's events after `event` that have one of these actions."""
    later = aliased(CaseEvent)
    return select(pick(later)).where(
        col(later.case_id) == col(event.case_id), col(later.id) > col(event.id), col(later.action).in_(actions)
    )


def _deadlines(case: Case, name: DeadlineName) -> list[DeadlineView]:
    return [view for view in map(DeadlineView.model_validate, case.deadlines) if view.name == name]


# A cell starting like this is a formula to Excel (CSV injection): a leading quote keeps it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def csv_response(name: str, header: str, rows: Sequence[Sequence[object]]) -> Response:
    """UTF-8 with a BOM, which Excel in China needs to read it as Unicode; a Chinese file name, an ASCII fallback."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header.split())
    writer.writerows([csv_cell(value) for value in row] for row in rows)
    stamp = utcnow().astimezone(CHINA_TZ).strftime("%Y%m%d-%H%M")
    disposition = f"attachment; filename=\"hcp-{stamp}.csv\"; filename*=UTF-8''{quote(f'{name}-{stamp}.csv')}"
    return Response(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


async def _audit_export(session: AsyncSession, request: Request, user: User, what: str, filters: dict[str, Any],
                        rows: int, total: int) -> None:  # fmt: skip
    """An export takes case data off the system: who took which view, and how many rows."""
    after = {"filters": {k: v for k, v in filters.items() if v != ""}, "rows": rows, "total": total}
    audit_user_action(session, request, user, f"export.{what}", "case_list", what, unit_id=user.unit_id, after=after)
    await session.commit()


# ---- the board (督办看板) --------------------------------------------------------------------------

_BOARD_ORDER = {
    "rung": (col(Case.escalation_rung).desc(), col(Case.next_due_at).asc().nulls_last(), col(Case.id)),
    "unit": (col(Unit.name), col(Case.next_due_at).asc().nulls_last(), col(Case.id)),
    "due": (col(Case.next_due_at).asc().nulls_last(), col(Case.id)),
}


async def _board(session: AsyncSession, user: User, filters: dict[str, Any], limit: int, offset: int
                 ) -> tuple[int, list[Listed]]:  # fmt: skip
    """Open cases past a deadline or escalated, in the supervisor's scope, in the chosen order."""
    conditions = [
        *await scope_conditions(session, user),
        col(Case.stage).not_in(TERMINAL_STAGES),
        or_(col(Case.overdue) == True, col(Case.escalation_rung) >= 1),  # noqa: E712
    ]
    for column, value in ((Case.unit_id, filters["unit_id"]), (Case.escalation_rung, filters["rung"]),
                          (Case.stage, filters["stage"])):  # fmt: skip
        if value != "":
            conditions.append(col(column) == value)
    total = (await session.exec(select(func.count()).select_from(Case).where(*conditions))).one()
    query = summary_query().where(*conditions).order_by(*_BOARD_ORDER[filters["sort"]]).limit(limit).offset(offset)
    calendar = await load_calendar(session)
    rows = [Listed.of(row) for row in (await session.exec(query)).all()]
    for row in rows:
        row.time_left = time_left_zh(row.case.next_due_at, calendar)
    return total, rows


@router.get("/board", response_class=HTMLResponse)
async def board(
    request: Request, session: SessionDep, user: SupervisorUser, unit_id: IdFilter = "", rung: RungFilter = "",
    stage: StageFilter = "", sort: BoardSort = "rung", page: PageNumber = 1,
) -> HTMLResponse:  # fmt: skip
    """督办看板: overdue and escalated cases, and the requests waiting for a supervisor's decision."""
    filters = {"unit_id": unit_id, "rung": rung, "stage": stage, "sort": sort}
    total, rows = await _board(session, user, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    # Rows come in the sort's order, so a group is a run of equal keys; the due-date order has one group.
    key = {"rung": lambda r: f"督办 {r.case.escalation_rung} 级", "unit": lambda r: r.unit_name}.get(sort, lambda r: "")
    groups = [(label, list(members)) for label, members in groupby(rows, key)]
    return render(
        request, "supervision/board.html.j2", title="督办看板", groups=groups, total=total, page=page,
        pages=max(1, -(-total // PAGE_SIZE)), filters=filters, query=query_string(**filters),
        units=await unit_choices(session, user), sorts=list(words.BOARD_SORT_LABELS_ZH.items()),
        stages=[(s.value, label) for s, label in STAGE_LABELS_ZH.items() if s not in TERMINAL_STAGES],
        stage_label=lambda s: STAGE_LABELS_ZH[s],
        pending=await _pending(session, user, unit_id), pending_label=words.PENDING_KIND_LABELS_ZH.get,
    )  # fmt: skip


@router.get("/board.csv")
async def board_csv(
    request: Request, session: SessionDep, user: SupervisorUser, unit_id: IdFilter = "", rung: RungFilter = "",
    stage: StageFilter = "", sort: BoardSort = "rung",
) -> Response:  # fmt: skip
    """The board as filtered, every page of it, for Excel; the export is audited."""
    filters = {"unit_id": unit_id, "rung": rung, "stage": stage, "sort": sort}
    total, rows = await _board(session, user, filters, EXPORT_LIMIT, 0)
    cells = [
        (r.case.id, r.item_name, r.record_no, r.unit_name, STAGE_LABELS_ZH[r.case.stage], r.case.round,
         r.case.escalation_rung, china_time(r.case.next_due_at), r.time_left, china_time(r.case.opened_at))
        for r in rows
    ]  # fmt: skip
    await _audit_export(session, request, user, "board", filters, len(cells), total)
    return csv_response(
        "督办看板", "工单编号 事项名称 办件编号 承办单位 办理阶段 轮次 督办级别 最近办理期限 剩余时间 生成时间", cells
    )


# ---- requests awaiting a supervisor (待审批) ------------------------------------------------------

# A request is pending until it is decided, or until a reassignment or a new round drops it (the
# workflow forgets a round's requests then); only the newest request of a kind counts.
_DROPPED_BY = ("reassigned", "reopened")
_REQUESTS = {  # request → (events that settle it, the supervisor's step that decides it)
    "extension_requested": (("extension_approved", "extension_refused"), "extension-decision"),
    "cannot_rectify_requested": (("cannot_rectify_approved", "cannot_rectify_refused"), "cannot-rectify-decision"),
}


@dataclass
class Pending:
    listed: Listed
    event: CaseEvent
    detail: str
    step: str


async def _pending(session: AsyncSession, user: User, unit_id: int | Literal[""]) -> list[Pending]:
    """Requests waiting for a decision in scope, found in SQL: each request event that no later event settles."""
    scope = await scope_conditions(session, user)
    if unit_id != "":
        scope.append(Case.unit_id == unit_id)
    calendar = await load_calendar(session)
    found: list[Pending] = []
    for kind, (settled_by, step) in _REQUESTS.items():
        asked = aliased(CaseEvent)
        # A 无法整改 request can only be decided while the case is in rectification.
        stages = [Stage.RECTIFICATION] if kind == "cannot_rectify_requested" else list(set(Stage) - TERMINAL_STAGES)
        query = (
            summary_query()
            .add_columns(asked)
            .join(asked, col(asked.case_id) == Case.id)
            .where(col(asked.action) == kind, ~exists(_after(asked, (kind, *settled_by, *_DROPPED_BY))))
            .where(col(Case.stage).in_(stages), *scope)
            .order_by(col(asked.id))
            .limit(PENDING_LIMIT)
        )
        for *summary, event in (await session.exec(query)).all():
            due, detail = _request_terms(summary[0], event)
            found.append(Pending(Listed.of(summary, time_left_zh(due, calendar)), event, detail, step))
    return sorted(found, key=lambda p: p.event.at)


def _request_terms(case: Case, event: CaseEvent) -> tuple[datetime | None, str]:
    """The deadline a request concerns (for the time left) and what it asks, in words."""
    if event.action == "cannot_rectify_requested":
        return case.next_due_at, f"原因：{event.data.get('reasons', '')}"
    name = DeadlineName(event.data["deadline"])
    running = [view for view in _deadlines(case, name) if view.state in ("running", "overdue")]
    asked_due = china_time(datetime.fromisoformat(event.data["new_due_at"]))
    detail = f"{DEADLINE_LABELS_ZH[name]}时限延至 {asked_due}；理由：{event.data.get('reason', '')}"
    return (running[-1].due_at if running else case.next_due_at), detail


# ---- the ledger (整改台账) -------------------------------------------------------------------------


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
    rectified = exists(_after(led, ("rectified",)))
    cancelled = exists(_after(led, ("reassigned", "cannot_rectify_approved")))
    late = col(Case.overdue) == True  # noqa: E712 - on the ledger, the ledger deadline is the only one running
    by_state: dict[str, list[Any]] = {
        "": [],
        "rectified": [rectified],
        "cancelled": [~rectified, cancelled],
        "overdue": [~rectified, ~cancelled, late],
        "on_time": [~rectified, ~cancelled, ~late],
    }
    conditions = [*await scope_conditions(session, user), col(led.action) == "ledgered", *by_state[state]]
    conditions.append(~exists(_after(led, ("ledgered",))))
    if unit_id != "":
        conditions.append(Case.unit_id == unit_id)
    count = select(func.count()).select_from(Case).join(led, col(led.case_id) == Case.id).where(*conditions)
    total = (await session.exec(count)).one()
    rectified_at = _after(led, ("rectified",), pick=lambda e: func.min(e.at)).scalar_subquery()
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
        views = _deadlines(case, DeadlineName.RECTIFICATION_LEDGER_MAX) if event.round == case.round else []
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
    await _audit_export(session, request, user, "ledger", {"unit_id": unit_id, "state": state}, len(cells), total)
    header = "工单编号 事项名称 办件编号 承办单位 整改计划 单位设定的整改期限 延期后的整改期限 状态 列入台账时间 整改完成时间"
    return csv_response("整改台账", header, cells)
