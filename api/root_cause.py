"""Root-cause rectifications over HTTP (根源整改): list, open, read. The steps are in api/root_cause_steps.py.

Who sees one: the supervisors above its responsible unit (their subtree), that unit's staff, and
administrators; anyone else gets 404, as for cases, so ids cannot be probed. Only a supervisor opens
one (api/root_cause_open.py). Reviewers and business systems have no part in them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import ColumnElement, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep, client_address, visible_unit_ids
from api.errors import api_error, error_responses
from api.params import IdPath, Limit, Offset
from api.root_cause_open import open_root_cause
from models.case.records import Case
from models.case.vocabulary import STAGE_LABELS_ZH
from models.organisation import Unit
from models.ratings import Rating
from models.roles import Role
from models.root_cause import (
    LinkedCaseRead,
    RootCauseCreate,
    RootCauseEvent,
    RootCauseEventRead,
    RootCauseLink,
    RootCausePage,
    RootCauseRead,
    RootCauseRectification,
    RootCauseSummary,
)
from models.root_cause_io import ROOT_CAUSE_STAGE_LABELS_ZH, RootCauseStage
from models.services import ServiceItem, ServiceRecord
from models.users import User

router = APIRouter(prefix="/api/v1/root-cause-rectifications", tags=["root-cause rectifications"])


async def root_cause_units(session: AsyncSession, user: User) -> set[int] | None:
    """The responsible units whose rectifications the person sees (None: all). 403 for reviewers."""
    if user.role == Role.REVIEWER:
        raise api_error(403, "forbidden", "复核人员不参与根源整改")
    return await visible_unit_ids(session, user)


async def visible_rectification(session: AsyncSession, user: User, rectification_id: int) -> RootCauseRectification:
    """The rectification if the person may see it; 404 (as if missing) otherwise."""
    units = await root_cause_units(session, user)
    row = await session.get(RootCauseRectification, rectification_id)
    if row is None or (units is not None and row.unit_id not in units):
        raise api_error(404, "not_found", f"根源整改 {rectification_id} 不存在或无权查看")
    return row


StageFilter = Annotated[
    RootCauseStage | None,
    Query(description="rectifying 整改中, result_submitted 待验收, accepted 已验收, withdrawn 已撤销; omitted: all"),
]


@router.get("", response_model=RootCausePage, responses=error_responses(403))
async def list_rectifications(
    session: SessionDep, user: CurrentUser, stage: StageFilter = None, limit: Limit = 20, offset: Offset = 0
) -> RootCausePage:
    """The rectifications in the caller's scope, open ones with the nearest deadline first."""
    units = await root_cause_units(session, user)
    conditions: list[ColumnElement[bool]] = []
    if units is not None:
        conditions.append(col(RootCauseRectification.unit_id).in_(units))
    if stage is not None:
        conditions.append(col(RootCauseRectification.stage) == stage)
    total = (await session.exec(select(func.count()).select_from(RootCauseRectification).where(*conditions))).one()
    closed_last = col(RootCauseRectification.closed_at).is_not(None)
    rows = (
        await session.exec(
            select(RootCauseRectification)
            .where(*conditions)
            .order_by(
                closed_last,
                col(RootCauseRectification.due_at).asc().nulls_last(),
                col(RootCauseRectification.id).desc(),
            )
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return RootCausePage(
        items=[await rectification_summary(session, row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.post(
    "",
    response_model=RootCauseRead,
    status_code=201,
    responses=error_responses(403, 409, 422, 503),
)
async def create_rectification(
    body: RootCauseCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    user: CurrentUser,
) -> RootCauseRead | JSONResponse:
    """Open a root-cause rectification over cases in the supervisor's scope; its workflow starts at once."""
    row = await open_root_cause(session, settings, temporal, user, body, client_address(request))
    return await rectification_read(session, row)


@router.get("/{rectification_id}", response_model=RootCauseRead, responses=error_responses(403, 404))
async def get_rectification(rectification_id: IdPath, session: SessionDep, user: CurrentUser) -> RootCauseRead:
    """One rectification: its cases, deadline, result and timeline."""
    return await rectification_read(session, await visible_rectification(session, user, rectification_id))


async def rectification_summary(session: AsyncSession, row: RootCauseRectification) -> RootCauseSummary:
    assert row.id is not None
    unit = await session.get(Unit, row.unit_id)
    count = (
        await session.exec(
            select(func.count()).select_from(RootCauseLink).where(RootCauseLink.rectification_id == row.id)
        )
    ).one()
    return RootCauseSummary(**_summary_fields(row, unit.name if unit else "", count))


def _summary_fields(row: RootCauseRectification, unit_name: str, count: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "unit_id": row.unit_id,
        "unit_name": unit_name,
        "title": row.title,
        "stage": row.stage,
        "stage_label": ROOT_CAUSE_STAGE_LABELS_ZH[row.stage],
        "case_count": count,
        "due_at": row.due_at,
        "overdue": row.overdue,
        "escalation_rung": row.escalation_rung,
        "opened_at": row.opened_at,
        "closed_at": row.closed_at,
    }


async def rectification_read(session: AsyncSession, row: RootCauseRectification) -> RootCauseRead:
    """The whole rectification, as the API and its page show it (raters never appear: only case ids)."""
    assert row.id is not None
    unit = await session.get(Unit, row.unit_id)
    cases = (
        await session.exec(
            select(Case, Unit.name, ServiceItem.name, ServiceRecord.record_no, Rating.comment)  # type: ignore[call-overload]
            .join(RootCauseLink, col(RootCauseLink.case_id) == Case.id)
            .join(Rating, col(Rating.id) == Case.rating_id)
            .join(ServiceRecord, col(ServiceRecord.id) == Rating.record_id)
            .join(ServiceItem, col(ServiceItem.id) == ServiceRecord.item_id)
            .join(Unit, col(Unit.id) == Case.unit_id)
            .where(RootCauseLink.rectification_id == row.id)
            .order_by(col(Case.id))
        )
    ).all()
    events = (
        await session.exec(
            select(RootCauseEvent).where(RootCauseEvent.rectification_id == row.id).order_by(col(RootCauseEvent.id))
        )
    ).all()
    return RootCauseRead(
        **_summary_fields(row, unit.name if unit else "", len(cases)),
        workflow_id=row.workflow_id,
        opened_by=row.opened_by,
        problem=row.problem,
        concentration=row.concentration,
        policy_code=row.policy_code,
        policy_version=row.policy_version,
        within=row.within,
        result=row.result,
        workflow_started=row.workflow_started_at is not None,
        cases=[
            LinkedCaseRead(
                case_id=case.id,
                unit_name=unit_name,
                item_name=item_name,
                record_no=record_no,
                stage=STAGE_LABELS_ZH[case.stage],
                comment=comment,
            )
            for case, unit_name, item_name, record_no, comment in cases
        ],  # fmt: skip
        timeline=[
            RootCauseEventRead(stage=e.stage, action=e.action, actor=e.actor, at=e.at, data=e.data) for e in events
        ],
    )
