"""Concentrated problems over HTTP (差评集中事项): `GET /api/v1/concentrated-problems`.

A supervisor sees the bad reviews of their subtree (or of one unit's subtree in it, `unit_id`), an
administrator everyone's. The thresholds are the `[concentration]` of the profile in force where the
scope starts: the named unit's, else the supervisor's own unit's, else (an administrator) the
national default (docs/root-cause.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentUser, SessionDep, visible_unit_ids
from api.errors import api_error, error_responses
from api.params import IsoText, OptionalIdQuery
from models.case.step_inputs import ZonedDatetime
from models.concentration import ConcentratedProblem, ConcentrationKind, find_concentrated
from models.db import utcnow
from models.organisation import unit_subtree_ids
from models.policy import PinnedPolicy
from models.policy_store import DEFAULT_POLICY, latest_policy, policy_for_unit
from models.roles import Role
from models.users import User

router = APIRouter(prefix="/api/v1/concentrated-problems", tags=["root-cause rectifications"])


class ConcentrationReport(BaseModel):
    since: datetime = Field(description="The period counted: after this moment …")
    until: datetime = Field(description="… up to this one")
    min_bad: int = Field(description="Adopted bad reviews that make a problem concentrated")
    within: str = Field(description='The period\'s length, e.g. "30d"')
    source: str = Field(description="Where the numbers come from")
    policy_code: str
    policy_version: int
    items: list[ConcentratedProblem]


async def concentration_scope(
    session: AsyncSession, user: User, unit_id: int | None
) -> tuple[set[int] | None, PinnedPolicy]:
    """The units counted (None: all) and the profile whose thresholds apply; 403 for anyone but supervisors and admins."""
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise api_error(403, "forbidden", "只有督办人员和系统管理员可以查看差评集中事项")
    units = await visible_unit_ids(session, user)
    if unit_id is not None:
        if units is not None and unit_id not in units:
            raise api_error(403, "not_supervisor", f"单位 {unit_id} 不在您的督办范围内")
        return await unit_subtree_ids(session, unit_id), await policy_for_unit(session, unit_id)
    if user.unit_id is not None:
        return units, await policy_for_unit(session, user.unit_id)
    pinned = await latest_policy(session, DEFAULT_POLICY)
    if pinned is None:
        raise RuntimeError("no policy profile is loaded; run the policy sync (make run does it at start)")
    return units, pinned


async def concentration_report(
    session: AsyncSession,
    user: User,
    kind: ConcentrationKind | None = None,
    until: datetime | None = None,
    unit_id: int | None = None,
) -> ConcentrationReport:
    """The report the API answers and the page draws."""
    units, pinned = await concentration_scope(session, user, unit_id)
    rules = pinned.profile.concentration
    until = until or utcnow()
    items = await find_concentrated(session, units, until, rules, pinned.profile.tags, kind)
    return ConcentrationReport(
        since=until - rules.within.as_timedelta(), until=until, min_bad=rules.min_bad, within=str(rules.within),
        source=rules.source, policy_code=pinned.code, policy_version=pinned.version, items=items,
    )  # fmt: skip


KindFilter = Annotated[
    ConcentrationKind | None, Query(description="item 事项, unit 单位, staff 工作人员; omitted: all three")
]
Until = Annotated[
    ZonedDatetime | None,
    IsoText,
    Query(description="The end of the period, with a timezone (2026-12-01T00:00:00+08:00); omitted: now"),
]


@router.get("", response_model=ConcentrationReport, responses=error_responses(403, 422))
async def concentrated_problems(
    session: SessionDep,
    user: CurrentUser,
    kind: KindFilter = None,
    until: Until = None,
    unit_id: OptionalIdQuery = None,
) -> ConcentrationReport:
    """Items, units and staff whose adopted bad reviews cluster in the period, with their common complaints."""
    return await concentration_report(session, user, kind, until, unit_id)
