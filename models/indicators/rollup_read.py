"""Reading a report's counts from the rollup: one GROUP BY per rollup table, summing its count columns.

The rollup serves a filter and grouping exactly when they are made of its keys: a period of whole
China days, units (a scope, a subtree, a unit alone), a region (joined through the unit as it is
now), a channel, a target; grouped by none, region, unit, subunit, channel, day or month. A filter
on an item or a staff member, or a grouping by either, is not among its keys: compute.py reads the
raw tables for those. The groups come out as count_groups gives them, so report.py and derive.py
cannot tell which source they came from, and the rollup tests hold the two equal.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, Table, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models.indicators.compute import GroupCounts, GroupKey, empty_counts, group_key_value, undefined_families
from models.indicators.counting import DIFFERENCES
from models.indicators.definitions import COUNTS, LEVEL_COUNT, Dimension, Family
from models.indicators.filters import IndicatorFilter
from models.indicators.rollup_tables import (
    CASE_COLUMNS,
    RATING_COLUMNS,
    case_rollup,
    rating_rollup,
    rating_total_rollup,
    record_rollup,
)
from models.organisation import Region, Unit
from models.ratings import RatingTarget

# The rollup's columns for a transaction count under each rating target (rollup_tables.py).
_RECORD_COLUMNS: dict[RatingTarget | None, dict[str, str]] = {
    None: {
        "completed_records": "completed_records",
        "rated_records": "rated_records",
        "actively_rated_records": "actively_rated_records",
    },
    RatingTarget.ITEM: {
        "completed_records": "completed_records",
        "rated_records": "item_rated_records",
        "actively_rated_records": "item_actively_rated_records",
    },
    RatingTarget.STAFF: {
        "completed_records": "staff_completed_records",
        "rated_records": "staff_rated_records",
        "actively_rated_records": "staff_actively_rated_records",
    },
}


def servable(flt: IndicatorFilter, dimension: Dimension) -> bool:
    """Whether the rollup's keys can answer this filter and grouping exactly."""
    return flt.item_id is None and flt.staff_id is None and dimension not in (Dimension.ITEM, Dimension.STAFF)


def _group_key(table: Table, dimension: Dimension) -> tuple[Any, Any] | None:
    """What to group by, and the key shown for it (days and months as the raw report writes them).

    Grouped by the date itself and formatted once per group: formatting every row first cost a
    90-day report as much as summing it.
    """
    month = func.date_trunc("month", table.c.day)
    keys: dict[Dimension, tuple[Any, Any]] = {
        Dimension.REGION: (col(Unit.region_id), col(Unit.region_id)),
        # Subunits are folded into subtrees by report.py, as the raw groups are.
        Dimension.UNIT: (table.c.unit_id, table.c.unit_id),
        Dimension.SUBUNIT: (table.c.unit_id, table.c.unit_id),
        Dimension.DAY: (table.c.day, func.to_char(table.c.day, "YYYY-MM-DD")),
        Dimension.MONTH: (month, func.to_char(month, "YYYY-MM")),
    }
    if "channel" in table.c:
        keys[Dimension.CHANNEL] = (table.c.channel, table.c.channel)
    return keys.get(dimension)


def _where(table: Table, flt: IndicatorFilter) -> list[ColumnElement[bool]]:
    found = [table.c.day >= flt.period.first, table.c.day <= flt.period.last]
    if flt.units is not None:
        # One array parameter, not one placeholder per unit: a province's 500 units cost psycopg more to splice
        # into the query text than the rollup took to read.
        units = bindparam("units", sorted(flt.units), type_=postgresql.ARRAY(Integer))
        found.append(table.c.unit_id == any_(units))
    if flt.region_id is not None:
        found.append(col(Unit.region_id) == flt.region_id)
    if "channel" in table.c:
        if flt.channel is not None:
            found.append(table.c.channel == flt.channel.value)
        if flt.target is not None:
            found.append(table.c.target == flt.target.value)
    return found


async def _sums(
    session: AsyncSession,
    table: Table,
    flt: IndicatorFilter,
    dimension: Dimension,
    columns: list[str],
    by_profile: bool = False,
    rows_counted_by: str | None = None,
) -> list[Any]:
    """Each group's sum of the columns (and with by_profile, each region profile's within it).

    Without a grouping the one row is there even when no row is summed: its sums are then null (0).
    `rows_counted_by` names the column counting the raw rows the filter keeps: a group where it sums
    to 0 had no such row, so the raw tables have no group for it (transactions without a staff
    member under a staff filter).
    """
    grouping = _group_key(table, dimension)
    keys = [grouping[1].label("group_key")] if grouping is not None else []
    extra = [col(Region.policy_code)] if by_profile else []
    query = (
        select(*keys, *extra, *(func.sum(table.c[name]).label(name) for name in columns))
        .select_from(table)
        .join(Unit, col(Unit.id) == table.c.unit_id)
        .where(*_where(table, flt))
    )
    if by_profile:
        query = query.join(Region, col(Region.id) == col(Unit.region_id))
    if keys or extra:
        query = query.group_by(*([grouping[0]] if grouping is not None else []), *extra)
    if rows_counted_by is not None:
        query = query.having(func.sum(table.c[rows_counted_by]) > 0)
    return list((await (await session.connection()).execute(query)).all())


async def rollup_groups(
    session: AsyncSession, flt: IndicatorFilter, dimension: Dimension
) -> dict[GroupKey, GroupCounts]:
    """Every count of every group with any row, read from the rollup (servable filters only)."""
    assert servable(flt, dimension)
    groups: dict[GroupKey, GroupCounts] = {}

    def group(mapping: Any) -> GroupCounts:
        key = group_key_value(mapping["group_key"]) if "group_key" in mapping else None
        return groups.setdefault(key, empty_counts(flt, dimension))

    if dimension == Dimension.NONE:
        groups[None] = empty_counts(flt, dimension)
    by_channel = flt.channel is not None or flt.target is not None or dimension == Dimension.CHANNEL
    ratings = rating_rollup if by_channel else rating_total_rollup
    for row in await _sums(session, ratings, flt, dimension, list(RATING_COLUMNS), by_profile=True):
        mapping = row._mapping
        sums = {name: int(mapping[name]) for name in RATING_COLUMNS}
        part = GroupCounts(counts=dict(sums))
        for level, name in LEVEL_COUNT.items():
            if sums[name]:
                part.rated_levels[(mapping["policy_code"], level.value)] = sums[name]
        group(mapping).add(part)
    if Family.RECORDS not in undefined_families(flt, dimension):
        stored = _RECORD_COLUMNS[flt.target]
        completed = stored["completed_records"]
        for row in await _sums(
            session, record_rollup, flt, dimension, list(stored.values()), rows_counted_by=completed
        ):
            mapping = row._mapping
            part = GroupCounts(counts={name: int(mapping[column] or 0) for name, column in stored.items()})
            for name, (whole, less) in DIFFERENCES.items():
                part.counts[name] = part.counts[whole] - part.counts[less]  # type: ignore[operator]
            group(mapping).add(part)
    for row in await _sums(session, case_rollup, flt, dimension, list(CASE_COLUMNS)):
        mapping = row._mapping
        group(mapping).add(GroupCounts(counts={name: int(mapping[name] or 0) for name in CASE_COLUMNS}))
    assert all(set(g.counts) == {c.name for c in COUNTS} for g in groups.values())
    return groups
