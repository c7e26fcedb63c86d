"""Keeping the rollup current: recompute the (day, unit) slices written to since the last refresh, or everything.

A slice is recomputed from the raw tables with the same conditions the raw report uses (counting.py),
grouped by the rollup's keys instead of a report's, and replaces the slice's rows: so a refreshed
rollup holds exactly what the raw report would count, whatever the writes were. Every writer queues
the slices it touches in `rollupdirty` through PostgreSQL triggers (migration 0010), in its own
transaction, so no write can be committed without its slice queued.

A refresh, in one transaction: take the rollup's advisory lock (refreshes run one at a time; a second
waits, or with `wait=False` gives up at once), note the time, take every queued slice (DELETE …
RETURNING: what any transaction committed before that moment is among them), recompute those slices
from snapshots taken after it, and record the time as `refreshed_at`. Every write committed before
`refreshed_at` is therefore counted; one committed later is still queued for the next refresh. A
slice recomputed twice holds the same rows (idempotent), and nothing is added to what is there, so
two refreshers never double count.

A full build (the first refresh, `--full`, or when the definition digest of the counts changed, i.e.
after a change to counting.py) deletes every rollup row and recomputes month by month.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, func, insert, literal, select, text, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlmodel import col

from models.case.records import Case
from models.deadlines import CHINA_TZ
from models.indicators.counting import CONDITIONS, PLACING, family_select, filter_conditions
from models.indicators.definitions import COUNT_BY_NAME, Dimension, Family
from models.indicators.filters import IndicatorFilter
from models.indicators.periods import Period, china_date, month_days
from models.indicators.rollup_tables import (
    CASE_COLUMNS,
    RATING_COLUMNS,
    RECORD_COLUMNS,
    ROLLUP_TABLES,
    case_rollup,
    rating_rollup,
    rating_total_rollup,
    record_rollup,
    rollup_dirty,
    rollup_state,
)
from models.ratings import Rating, RatingChannel, RatingTarget
from models.services import ServiceRecord

# pg_advisory_xact_lock key of the rollup: "hcp-rollup" as an integer.
LOCK_KEY = int.from_bytes(b"hcp-roll", "big") & 0x7FFF_FFFF_FFFF_FFFF
# The triggers migration 0010 creates: 4 tables × insert, update, delete.
TRIGGER_COUNT = 12
_STATE_ID = 1


class RollupUnavailable(RuntimeError):
    """The rollup cannot be kept here: SQLite, or the triggers that queue slices are missing."""


@dataclass(frozen=True)
class Refreshed:
    """What one refresh did."""

    full: bool
    slices: int  # (day, unit) slices recomputed; a full build: the days it covered
    as_of: datetime | None  # every write committed before this is counted; None when skipped
    seconds: float
    skipped: bool = False  # another refresh held the lock (wait=False)


def _rating_statements(flt: IndicatorFilter) -> list[Any]:
    place = PLACING[Family.RATINGS]
    keys = [china_date(place.at), place.unit, place.channel, place.target]
    counts = [func.count().filter(CONDITIONS[name](flt, Dimension.NONE)) for name in RATING_COLUMNS]
    query = (
        family_select(Family.RATINGS, *keys, *counts)
        .where(*filter_conditions(Family.RATINGS, flt, Dimension.NONE))
        .group_by(*keys)
    )
    fine = rating_rollup.c
    summed = (
        select(fine.day, fine.unit_id, *(func.sum(fine[name]) for name in RATING_COLUMNS))
        .where(*_slice_of(rating_rollup, flt.period, flt.units))
        .group_by(fine.day, fine.unit_id)
    )
    return [
        insert(rating_rollup).from_select(["day", "unit_id", "channel", "target", *RATING_COLUMNS], query),
        insert(rating_total_rollup).from_select(["day", "unit_id", *RATING_COLUMNS], summed),
    ]


def _record_statements(flt: IndicatorFilter) -> list[Any]:
    """Transactions, with their adopted first ratings summed up once per transaction (one index probe, not six)."""
    rating = aliased(Rating, name="record_rating")
    active = col(rating.channel) != RatingChannel.SYSTEM_DEFAULT
    item, staff = col(rating.target) == RatingTarget.ITEM, col(rating.target) == RatingTarget.STAFF
    rated = (
        select(
            func.count().label("any_target"),
            func.count().filter(active).label("any_active"),
            func.count().filter(item).label("item"),
            func.count().filter(and_(item, active)).label("item_active"),
            func.count().filter(staff).label("staff"),
            func.count().filter(and_(staff, active)).label("staff_active"),
        )
        .where(col(rating.record_id) == ServiceRecord.id, col(rating.adopted), col(rating.follow_up) == 0)
        .lateral("rated")
    )
    # The raw filter for staff ratings keeps transactions that had a staff member (counting._record_can_have).
    has_staff = col(ServiceRecord.staff_id).is_not(None)
    columns = {
        "completed_records": true(),
        "staff_completed_records": has_staff,
        "rated_records": rated.c.any_target > 0,
        "actively_rated_records": rated.c.any_active > 0,
        "item_rated_records": rated.c.item > 0,
        "item_actively_rated_records": rated.c.item_active > 0,
        "staff_rated_records": and_(has_staff, rated.c.staff > 0),
        "staff_actively_rated_records": and_(has_staff, rated.c.staff_active > 0),
    }
    assert tuple(columns) == RECORD_COLUMNS
    place = PLACING[Family.RECORDS]
    keys = [china_date(place.at), place.unit]
    query = (
        family_select(Family.RECORDS, *keys, *(func.count().filter(c) for c in columns.values()))
        .join(rated, true())
        .where(*filter_conditions(Family.RECORDS, flt, Dimension.NONE))
        .group_by(*keys)
    )
    return [insert(record_rollup).from_select(["day", "unit_id", *RECORD_COLUMNS], query)]


def _case_statements(flt: IndicatorFilter) -> list[Any]:
    """Cases, then their follow-ups (placed as their case, so their keys are among the cases')."""
    place = PLACING[Family.CASES]
    keys = [china_date(place.at), place.unit, place.channel, place.target]
    names = {family: [n for n in CASE_COLUMNS if COUNT_BY_NAME[n].family == family] for family in Family}
    cases = (
        family_select(
            Family.CASES,
            *keys,
            *(func.count().filter(CONDITIONS[name](flt, Dimension.NONE)) for name in names[Family.CASES]),
            *(literal(0) for _ in names[Family.FOLLOW_UPS]),
        )
        .where(*filter_conditions(Family.CASES, flt, Dimension.NONE))
        .group_by(*keys)
    )
    columns = [*names[Family.CASES], *names[Family.FOLLOW_UPS]]
    follow_ups = (
        family_select(
            Family.FOLLOW_UPS,
            *(key.label(name) for key, name in zip(keys, ("day", "unit_id", "channel", "target"), strict=True)),
            *(func.count().filter(CONDITIONS[n](flt, Dimension.NONE)).label(n) for n in names[Family.FOLLOW_UPS]),
        )
        .where(*filter_conditions(Family.FOLLOW_UPS, flt, Dimension.NONE))
        .group_by(*keys)
        .subquery("follow_ups")
    )
    return [
        insert(case_rollup).from_select(["day", "unit_id", "channel", "target", *columns], cases),
        update(case_rollup)
        .where(*(case_rollup.c[key] == follow_ups.c[key] for key in ("day", "unit_id", "channel", "target")))
        .values({name: follow_ups.c[name] for name in names[Family.FOLLOW_UPS]}),
    ]


def slice_statements(period: Period, units: frozenset[int] | None) -> list[Any]:
    """Replace the rollup's rows of these days and units (None: every unit) with the raw tables' counts."""
    flt = IndicatorFilter(period=period, units=units)
    deletes = [delete(table).where(*_slice_of(table, period, units)) for table in ROLLUP_TABLES]
    return [*deletes, *_rating_statements(flt), *_record_statements(flt), *_case_statements(flt)]


def _slice_of(table: Table, period: Period, units: frozenset[int] | None) -> list[Any]:
    where = [table.c.day >= period.first, table.c.day <= period.last]
    if units is not None:
        where.append(table.c.unit_id.in_(sorted(units)))
    return where


def definition_digest() -> str:
    """A digest of the refresh's SQL: a rollup built by other conditions (an older counting.py) is rebuilt.

    The same in every process: an IN list made from a set (TERMINAL_STAGES) comes in the set's order,
    which string hashing randomises per process, so list values are sorted first.
    """
    digest = hashlib.sha256()
    for statement in slice_statements(Period(date(2000, 1, 1), date(2000, 1, 1)), frozenset({1})):
        compiled = statement.compile(dialect=postgresql.dialect())
        digest.update(str(compiled).encode())
        for name, value in sorted(compiled.params.items()):
            shown = sorted(str(v) for v in value) if isinstance(value, list | tuple | set | frozenset) else value
            digest.update(f"{name}={shown}".encode())
    return digest.hexdigest()


DEFINITION = definition_digest()


async def _check_triggers(conn: AsyncConnection) -> None:
    found = await conn.scalar(
        text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'rollup_dirty_%' AND tgenabled <> 'D'")
    )
    if found != TRIGGER_COUNT:
        raise RollupUnavailable(
            f"{found} of the rollup's {TRIGGER_COUNT} triggers are in place: run the migrations (alembic upgrade head)"
        )


async def _data_span(conn: AsyncConnection) -> tuple[date, date] | None:
    """The first and last China day anything is placed on (each family's timestamp is indexed)."""
    days: list[date] = []
    for column in (col(Rating.submitted_at), col(ServiceRecord.completed_at), col(Case.opened_at)):
        row = (await conn.execute(select(func.min(column), func.max(column)))).one()
        days += [moment.astimezone(CHINA_TZ).date() for moment in row if moment is not None]
    return (min(days), max(days)) if days else None


def _months(first: date, last: date) -> list[Period]:
    """[first, last] cut at month ends: a full build's chunks."""
    found, start = [], first
    while start <= last:
        end = min(month_days(start.strftime("%Y-%m"))[1], last)
        found.append(Period(start, end))
        start = end + timedelta(days=1)
    return found


async def _run(conn: AsyncConnection, statements: list[Any]) -> None:
    for statement in statements:
        await conn.execute(statement)


async def refresh(conn: AsyncConnection, full: bool = False, wait: bool = True) -> Refreshed:
    """Refresh the rollup in the connection's transaction (the caller commits); a full build when asked or needed."""
    started = time.perf_counter()
    if conn.dialect.name != "postgresql":
        raise RollupUnavailable("the rollup is kept on PostgreSQL only; on SQLite reports read the raw tables")
    await conn.execute(text("SET LOCAL jit = off"))  # as the raw report: compiling these aggregates costs more
    if wait:
        await conn.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
    elif not await conn.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))):
        return Refreshed(full, 0, None, time.perf_counter() - started, skipped=True)
    await _check_triggers(conn)
    state = (await conn.execute(select(rollup_state).where(rollup_state.c.id == _STATE_ID))).first()
    full = full or state is None or state.definition != DEFINITION
    # Taken before the queue is read: whatever was committed before it is in the queue the DELETE sees.
    as_of = (await conn.execute(select(func.clock_timestamp()))).scalar_one()
    queued = (await conn.execute(delete(rollup_dirty).returning(rollup_dirty.c.day, rollup_dirty.c.unit_id))).all()
    if full:
        for table in ROLLUP_TABLES:
            await conn.execute(delete(table))
        span = await _data_span(conn)
        chunks = _months(*span) if span else []
        for chunk in chunks:
            await _run(conn, slice_statements(chunk, None))
        slices, built_at = sum(chunk.days for chunk in chunks), as_of
    else:
        assert state is not None
        by_day: dict[date, set[int]] = defaultdict(set)
        for day, unit_id in queued:
            by_day[day].add(unit_id)
        for day, units in sorted(by_day.items()):
            await _run(conn, slice_statements(Period(day, day), frozenset(units)))
        slices, built_at = sum(len(units) for units in by_day.values()), state.built_at
    values = {"definition": DEFINITION, "built_at": built_at, "refreshed_at": as_of}
    await conn.execute(
        pg_insert(rollup_state)
        .values(id=_STATE_ID, **values)
        .on_conflict_do_update(index_elements=[rollup_state.c.id], set_=values)
    )
    return Refreshed(full, slices, as_of, time.perf_counter() - started)


@dataclass(frozen=True)
class RollupStatus:
    built_at: datetime
    refreshed_at: datetime
    current: bool  # built by this definition of the counts
    queued: int  # slice marks waiting for the next refresh


async def rollup_status(conn: AsyncConnection) -> RollupStatus | None:
    """When the rollup was built and refreshed, and what waits; None before its first build (or on SQLite)."""
    if conn.dialect.name != "postgresql":
        return None
    state = (await conn.execute(select(rollup_state).where(rollup_state.c.id == _STATE_ID))).first()
    if state is None:
        return None
    queued = await conn.scalar(select(func.count()).select_from(rollup_dirty))
    return RollupStatus(state.built_at, state.refreshed_at, state.definition == DEFINITION, int(queued or 0))
