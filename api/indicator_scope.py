"""The query parameters shared by the indicators report and its drill-down lists, and the caller's scope.

Who sees what follows the case scope (api/deps.py: visible_unit_ids): a unit's staff their own unit,
a supervisor their unit's subtree, an administrator everything. Reviewers decide appeals and have no
units of their own, so they have no figures (403); business systems (API keys) none either (401).
Filters only ever narrow a caller's scope: a unit outside it is a 403 naming it, an unknown id a 422.
Each 422 names the parameter and the value it got (none of these parameters carries personal data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, TypeVar

from fastapi import Depends, Query
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentUser, visible_unit_ids
from api.errors import api_error
from api.params import OptionalIdQuery
from models.indicators.definitions import Dimension
from models.indicators.filters import IndicatorFilter
from models.indicators.periods import Period, month_to_date
from models.organisation import Region, Staff, Unit, unit_subtree_ids
from models.ratings import RatingChannel, RatingTarget
from models.roles import Role
from models.services import ServiceItem
from models.users import User

# A report by day stays readable (and its answer small): a year at most.
MAX_DAYS_BY_DAY = 366
_CHANNELS = [channel.value for channel in RatingChannel]
_TARGETS = [target.value for target in RatingTarget]


@dataclass(frozen=True)
class FilterQuery:
    """The filter as the query string gave it, not yet checked against the database or the caller."""

    first: str | None
    last: str | None
    unit_id: int | None
    include_subunits: bool
    region: str | None
    item_id: int | None
    staff_id: int | None
    channel: str | None
    target: str | None


def filter_query(
    first: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=20,
            description="First day, China time (YYYY-MM-DD); with `to`. Neither: this month to date",
            json_schema_extra={"format": "date"},
        ),
    ] = None,
    last: Annotated[
        str | None,
        Query(
            alias="to",
            max_length=20,
            description="Last day, included (YYYY-MM-DD)",
            json_schema_extra={"format": "date"},
        ),
    ] = None,
    unit_id: OptionalIdQuery = None,
    include_subunits: Annotated[
        bool, Query(description="with unit_id: its whole subtree (default) or the unit only")
    ] = True,
    region: Annotated[str | None, Query(min_length=1, max_length=12, description="行政区划代码")] = None,
    item_id: OptionalIdQuery = None,
    staff_id: Annotated[
        int | None, Query(ge=1, le=2_147_483_647, description="a staff member: their staff ratings only")
    ] = None,
    channel: Annotated[
        str | None, Query(max_length=32, description="评价渠道", json_schema_extra={"enum": _CHANNELS})
    ] = None,
    target: Annotated[
        str | None, Query(max_length=16, description="评价对象", json_schema_extra={"enum": _TARGETS})
    ] = None,
) -> FilterQuery:
    return FilterQuery(first, last, unit_id, include_subunits, region, item_id, staff_id, channel, target)


FilterQueryDep = Annotated[FilterQuery, Depends(filter_query)]


async def indicator_user(user: CurrentUser) -> User:
    """A staff user with units to see figures of; 403 for reviewers (and accounts without a unit)."""
    if user.role == Role.ADMIN or (user.unit_id is not None and user.role in (Role.SUPERVISOR, Role.UNIT_STAFF)):
        return user
    raise api_error(403, "no_indicator_scope", "统计数据仅对承办单位、督办人员和系统管理员开放")


IndicatorUser = Annotated[User, Depends(indicator_user)]


@dataclass(frozen=True)
class Resolved:
    filter: IndicatorFilter
    subunit_roots: list[int]  # whose children are the rows of group_by=subunit


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise api_error(422, "bad_date", f"{name} 须为日期 YYYY-MM-DD（收到 {value!r}）", field=name) from None


def parse_period(query: FilterQuery) -> Period:
    if query.first is None and query.last is None:
        return month_to_date()
    if query.first is None or query.last is None:
        missing = "from" if query.first is None else "to"
        raise api_error(422, "incomplete_period", "from 与 to 须同时给出（或都不给：本月至今）", field=missing)
    period = Period(_day(query.first, "from"), _day(query.last, "to"))
    if period.last < period.first:
        raise api_error(422, "bad_range", f"to（{period.last}）不能早于 from（{period.first}）", field="to")
    return period


def parse_dimension(value: str) -> Dimension:
    try:
        return Dimension(value)
    except ValueError:
        choices = ", ".join(d.value for d in Dimension)
        raise api_error(
            422, "unknown_group_by", f"group_by 不支持 {value!r}；可选：{choices}", field="group_by"
        ) from None


async def resolve(session: AsyncSession, user: User, query: FilterQuery, dimension: Dimension) -> Resolved:
    """The filter checked against the database and narrowed to what the caller may see."""
    period = parse_period(query)
    if dimension == Dimension.DAY and period.days > MAX_DAYS_BY_DAY:
        raise api_error(
            422,
            "period_too_long",
            f"按日分组最多 {MAX_DAYS_BY_DAY} 天（收到 {period.days} 天），请按月分组",
            "group_by",
        )
    channel = _choice(RatingChannel, query.channel, "channel")
    target = _choice(RatingTarget, query.target, "target")
    visible = await visible_unit_ids(session, user)
    units: set[int] | None = visible
    roots = [user.unit_id] if user.unit_id is not None and visible is not None else []
    if query.unit_id is not None:
        await _check_unit(session, visible, query.unit_id, "unit_id")
        asked = await unit_subtree_ids(session, query.unit_id) if query.include_subunits else {query.unit_id}
        units = asked if visible is None else asked & visible
        roots = [query.unit_id]
    if not roots:  # an administrator over everything: the top units, each with its subtree
        roots = [u for u in (await session.exec(select(Unit.id).where(col(Unit.parent_id).is_(None)))).all() if u]
    region_id = None
    if query.region is not None:
        region_id = (await session.exec(select(Region.id).where(Region.code == query.region))).first()
        if region_id is None:
            raise api_error(422, "unknown_region", f"行政区划 {query.region!r} 不存在", field="region")
    if query.item_id is not None and await session.get(ServiceItem, query.item_id) is None:
        raise api_error(422, "unknown_item", f"事项 {query.item_id} 不存在", field="item_id")
    if query.staff_id is not None:
        staff = await session.get(Staff, query.staff_id)
        if staff is None:
            raise api_error(422, "unknown_staff", f"工作人员 {query.staff_id} 不存在", field="staff_id")
        await _check_unit(session, visible, staff.unit_id, "staff_id")
    flt = IndicatorFilter(
        period=period,
        units=frozenset(units) if units is not None else None,
        unit_id=query.unit_id,
        include_subunits=query.include_subunits,
        region_id=region_id,
        region_code=query.region,
        item_id=query.item_id,
        staff_id=query.staff_id,
        channel=channel,
        target=target,
    )
    return Resolved(flt, roots)


async def _check_unit(session: AsyncSession, visible: set[int] | None, unit_id: int, field: str) -> None:
    if await session.get(Unit, unit_id) is None:
        raise api_error(422, "unknown_unit", f"单位 {unit_id} 不存在", field=field)
    if visible is not None and unit_id not in visible:
        raise api_error(403, "outside_scope", f"单位 {unit_id} 不在您的查看范围内", field=field)


_E = TypeVar("_E", RatingChannel, RatingTarget)


def _choice(kind: type[_E], value: str | None, name: str) -> _E | None:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise api_error(422, f"unknown_{name}", f"{name} 不支持 {value!r}；可选：{choices}", field=name) from None
