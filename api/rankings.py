"""Monthly rankings (排名通报) over HTTP, and the scope a ranking or a monthly report covers.

Who sees what is the indicators' scope (api/indicator_scope.py): a unit's staff their own unit, a
supervisor their subtree, an administrator everything; reviewers and business systems nothing. A
ranking ranks within that scope (or the unit or region asked for, inside it). docs/reports.md.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep, visible_unit_ids
from api.errors import api_error, error_responses
from api.indicator_scope import IndicatorUser
from api.params import OptionalIdQuery
from models.indicators.periods import china_today
from models.organisation import Region, Unit, unit_subtree_ids
from models.policy import PinnedPolicy
from models.policy_store import DEFAULT_POLICY, latest_policy, policy_for_unit
from models.rankings import RankingKind, RankingRead, TalkFlag, build_ranking, talk_flags
from models.reports.figures import ReportScope
from models.users import User

router = APIRouter(prefix="/api/v1/rankings", tags=["reports"])
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

MonthQuery = Annotated[
    str, Query(min_length=7, max_length=7, description="月份 YYYY-MM (China time)", examples=["2025-02"])
]
RegionQuery = Annotated[str | None, Query(min_length=1, max_length=12, description="行政区划代码 (or unit_id)")]


def current_month() -> str:
    return china_today().strftime("%Y-%m")


def parse_month(value: str, field: str = "month") -> str:
    """A month "YYYY-MM" not after this one; 422 naming the parameter and the value otherwise."""
    if not _MONTH.match(value) or not 2000 <= int(value[:4]) <= 2100:
        raise api_error(422, "bad_month", f"{field} 须为月份 YYYY-MM（收到 {value!r}）", field=field)
    if value > current_month():
        raise api_error(422, "month_in_future", f"{field} {value} 尚未开始", field=field)
    return value


async def resolve_scope(
    session: AsyncSession, user: User, unit_id: int | None, region: str | None
) -> tuple[ReportScope, PinnedPolicy]:
    """The units covered (a unit's subtree, a region's units, or the caller's own scope) and the profile that rules."""
    visible = await visible_unit_ids(session, user)
    if unit_id is not None and region is not None:
        raise api_error(422, "one_scope", "unit_id 与 region 只能给出其一", field="region")
    if region is not None:
        found = (await session.exec(select(Region).where(Region.code == region))).first()
        if found is None or found.id is None:
            raise api_error(422, "unknown_region", f"行政区划 {region!r} 不存在", field="region")
        units = {u for u in (await session.exec(select(Unit.id).where(Unit.region_id == found.id))).all() if u}
        if visible is not None and not units <= visible:
            raise api_error(403, "outside_scope", f"行政区划 {region} 不全在您的查看范围内", field="region")
        pinned = await latest_policy(session, found.policy_code) or await _national(session)
        return ReportScope(f"region:{found.id}", found.name, frozenset(units), region_id=found.id), pinned
    if unit_id is None and user.unit_id is not None and visible is not None:
        unit_id = user.unit_id
    if unit_id is None:  # an administrator over everything
        every = {u for u in (await session.exec(select(Unit.id))).all() if u}
        return ReportScope("all", "全部单位", frozenset(every)), await _national(session)
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise api_error(422, "unknown_unit", f"单位 {unit_id} 不存在", field="unit_id")
    if visible is not None and unit_id not in visible:
        raise api_error(403, "outside_scope", f"单位 {unit_id} 不在您的查看范围内", field="unit_id")
    subtree = await unit_subtree_ids(session, unit_id)
    units = subtree if visible is None else subtree & visible
    label = unit.name + ("（含下级单位）" if len(units) > 1 else "")
    return ReportScope(f"unit:{unit_id}", label, frozenset(units), unit_id=unit_id), await policy_for_unit(
        session, unit_id
    )


async def _national(session: AsyncSession) -> PinnedPolicy:
    pinned = await latest_policy(session, DEFAULT_POLICY)
    if pinned is None:
        raise RuntimeError("no policy profile is loaded; run the policy sync (make run does it at start)")
    return pinned


def parse_kind(value: str) -> RankingKind:
    try:
        return RankingKind(value)
    except ValueError:
        choices = ", ".join(k.value for k in RankingKind)
        raise api_error(422, "unknown_kind", f"kind 不支持 {value!r}；可选：{choices}", field="kind") from None


class ScopeRead(BaseModel):
    key: str = Field(description='"unit:<id>", "region:<id>" or "all"')
    label: str


class RankingAnswer(BaseModel):
    scope: ScopeRead
    ranking: RankingRead
    talks: list[TalkFlag] = Field(description="约谈: units in the bottom N for M months running (kind=unit only)")


async def ranking_answer(
    session: AsyncSession, user: User, month: str, kind: str, unit_id: int | None, region: str | None
) -> RankingAnswer:
    """The ranking the API answers and the page draws."""
    parsed_month, parsed_kind = parse_month(month), parse_kind(kind)
    scope, pinned = await resolve_scope(session, user, unit_id, region)
    ranking = await build_ranking(session, scope.units, parsed_month, parsed_kind, pinned)
    talks = await talk_flags(session, scope.units, parsed_month, pinned) if parsed_kind == RankingKind.UNIT else []
    return RankingAnswer(scope=ScopeRead(key=scope.key, label=scope.label), ranking=ranking, talks=talks)


@router.get("", response_model=RankingAnswer, responses=error_responses(403, 422))
async def get_rankings(
    session: SessionDep,
    user: IndicatorUser,
    month: MonthQuery,
    kind: Annotated[
        str,
        Query(
            max_length=16,
            description="unit 单位, window 窗口, staff 工作人员",
            json_schema_extra={"enum": [k.value for k in RankingKind]},
        ),
    ] = RankingKind.UNIT.value,
    unit_id: OptionalIdQuery = None,
    region: RegionQuery = None,
) -> RankingAnswer:
    """A month's ranking of units, windows (一窗一码) or staff (staff ratings only) by the profile's formula.

    Ties share a rank; fewer ratings than the profile's minimum: listed, not ranked. With kind=unit,
    `talks` lists the units at the bottom for the profile's number of months running (约谈).
    """
    return await ranking_answer(session, user, month, kind, unit_id, region)


# Units below the scope's root are listed in scope order for forms (the pages' unit choice).
async def scope_units(session: AsyncSession, units: frozenset[int]) -> list[tuple[int, str]]:
    rows = (await session.exec(select(Unit.id, Unit.name).where(col(Unit.id).in_(sorted(units))))).all()
    return [(unit_id, name) for unit_id, name in rows if unit_id is not None]
