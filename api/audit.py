"""The audit log, for admins (everything) and supervisors (their units' subtree)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import ColumnElement, func
from sqlmodel import col, select

from api.deps import CurrentUser, SessionDep, visible_unit_ids
from api.errors import api_error, error_responses
from api.params import AuditLimit, IsoText, Offset, QueryText
from models.audit import AuditEvent, AuditEventRead
from models.roles import Role

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditPage(BaseModel):
    items: list[AuditEventRead]
    total: int
    limit: int
    offset: int


@router.get("", response_model=AuditPage, responses=error_responses(403))
async def list_audit_events(
    session: SessionDep,
    user: CurrentUser,
    action: QueryText = None,
    target_type: QueryText = None,
    target_id: QueryText = None,
    actor: QueryText = None,
    since: Annotated[datetime | None, IsoText] = None,
    limit: AuditLimit = 100,
    offset: Offset = 0,
) -> AuditPage:
    """Audit records, newest first. Supervisors see records about their subtree's units only."""
    if user.role not in (Role.ADMIN, Role.SUPERVISOR):
        raise api_error(403, "forbidden", "只有系统管理员和督办人员可以查询审计日志")
    conditions: list[ColumnElement[bool]] = []
    units = await visible_unit_ids(session, user)
    if units is not None:
        conditions.append(col(AuditEvent.unit_id).in_(units))
    for column, value in ((AuditEvent.action, action), (AuditEvent.target_type, target_type)):
        if value is not None:
            conditions.append(col(column) == value)
    if target_id is not None:
        conditions.append(col(AuditEvent.target_id) == target_id)
    if actor is not None:
        conditions.append(col(AuditEvent.actor) == actor)
    if since is not None:
        if since.tzinfo is None:
            raise api_error(422, "naive_time", "since 须带时区", field="since")
        conditions.append(col(AuditEvent.at) >= since)
    total = (await session.exec(select(func.count()).select_from(AuditEvent).where(*conditions))).one()
    rows = (
        await session.exec(
            select(AuditEvent).where(*conditions).order_by(col(AuditEvent.id).desc()).limit(limit).offset(offset)
        )
    ).all()
    return AuditPage(
        items=[AuditEventRead.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
