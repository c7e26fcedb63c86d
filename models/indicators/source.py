"""Where a report's counts come from: the rollup when it can answer exactly and is fresh enough, else the raw tables.

The rollup answers when the database is PostgreSQL (SQLite keeps no rollup), the filter and grouping
are made of its keys (rollup_read.servable), it was built by the current definition of the counts,
and its last refresh is at most `max_age` old. Its figures are then as of that refresh: every write
committed before `as_of` is counted. Otherwise the raw tables are read, as of now. Either way the
answer says which (`source`) and as of when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, text
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import utcnow
from models.indicators.compute import GroupCounts, GroupKey, count_groups
from models.indicators.definitions import Dimension
from models.indicators.filters import IndicatorFilter
from models.indicators.rollup_read import rollup_groups, servable
from models.indicators.rollup_refresh import DEFINITION
from models.indicators.rollup_tables import rollup_state


class Source(StrEnum):
    ROLLUP = "rollup"  # the rollup of counts, as of its last refresh
    RAW = "raw"  # the raw tables, as of now


@dataclass(frozen=True)
class Counted:
    groups: dict[GroupKey, GroupCounts]
    source: Source
    as_of: datetime


async def fresh_rollup_as_of(session: AsyncSession, max_age: timedelta) -> datetime | None:
    """The last refresh, when the rollup is kept here, current and at most max_age old; else None."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return None
    state = (await connection.execute(select(rollup_state.c.definition, rollup_state.c.refreshed_at))).first()
    if state is None or state.definition != DEFINITION or state.refreshed_at < utcnow() - max_age:
        return None
    refreshed_at: datetime = state.refreshed_at
    return refreshed_at


async def counted(
    session: AsyncSession, flt: IndicatorFilter, dimension: Dimension, rollup_max_age: timedelta | None
) -> Counted:
    """The report's groups, from the rollup when it serves (rollup_max_age None: never), else from the raw tables."""
    if rollup_max_age is not None and servable(flt, dimension):
        as_of = await fresh_rollup_as_of(session, rollup_max_age)
        if as_of is not None:
            # Sums over many rows, as the raw report's aggregates: compiling them costs more than running them.
            await (await session.connection()).execute(text("SET LOCAL jit = off"))
            return Counted(await rollup_groups(session, flt, dimension), Source.ROLLUP, as_of)
    as_of = utcnow()
    return Counted(await count_groups(session, flt, dimension), Source.RAW, as_of)
