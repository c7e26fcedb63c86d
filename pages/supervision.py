"""Supervisors' pages (督办): the board of overdue cases and requests awaiting approval, with its CSV export.

Which cases a supervisor sees is the API's scope (api/cases/scope.py); this module only adds the
board's and the ledger's own conditions to it. Every step (remind, reassign, extend, instruct,
approve) is a form on the case page (pages/cases.py), which each row links to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field
from sqlalchemy import exists, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.cases.scope import scope_conditions, summary_query
from api.deps import SessionDep, visible_unit_ids
from api.params import MAX_ID, MAX_OFFSET
from models.calendar import load_calendar
from models.case.records import Case, CaseEvent
from models.case.vocabulary import DEADLINE_LABELS_ZH, STAGE_LABELS_ZH, TERMINAL_STAGES, DeadlineView, Stage
from models.organisation import Unit
from models.policy import DeadlineName
from models.roles import Role
from models.users import User
from pages import words
from pages.csv_export import audit_export, csv_response
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


def after_events(event: Any, actions: Sequence[str], pick: Callable[[Any], Any] = lambda e: e.id) -> Any:
    """A correlated subquery over the same case's events after `event` that have one of these actions."""
    later = aliased(CaseEvent)
    return select(pick(later)).where(
        col(later.case_id) == col(event.case_id), col(later.id) > col(event.id), col(later.action).in_(actions)
    )


def deadlines_named(case: Case, name: DeadlineName) -> list[DeadlineView]:
    return [view for view in map(DeadlineView.model_validate, case.deadlines) if view.name == name]


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
    await audit_export(session, request, user, "board", filters, len(cells), total)
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
            .where(col(asked.action) == kind, ~exists(after_events(asked, (kind, *settled_by, *_DROPPED_BY))))
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
    running = [view for view in deadlines_named(case, name) if view.state in ("running", "overdue")]
    asked_due = china_time(datetime.fromisoformat(event.data["new_due_at"]))
    detail = f"{DEADLINE_LABELS_ZH[name]}时限延至 {asked_due}；理由：{event.data.get('reason', '')}"
    return (running[-1].due_at if running else case.next_due_at), detail
