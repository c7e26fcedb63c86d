"""The rollup of counts (统计汇总表): every additive count by China day and unit, kept by runtime/refresh_indicators.py.

A table per kind of row counted, each keyed by the China day that places the row and the unit it
belongs to (docs/indicators.md, "Rollups"):

- `ratingrollup`: ratings by submitted day, the record's unit, channel and target; a column per
  ratings count (levels included, so the score is re-weighed by the region's profile when read).
  `ratingtotalrollup` sums it over channels and targets, for the reports that need neither.
- `recordrollup`: completed transactions by completion day and unit; "rated" once for any target,
  once for item ratings and once for staff ratings (a staff filter counts only records with a staff
  member), since a transaction is rated per target.
- `caserollup`: cases by opened day, the unit they stand at, their rating's channel and target; a
  column per case and follow-up count, the "now" counts (overdue, pending) included.

Item and staff are not keys: a unit's day holds about as many item × staff combinations as it has
ratings, so a report by item or staff reads the raw tables (indexed for it below). The region,
the unit tree and the profile's scores are joined when a report is read, so moving a unit or
re-pinning a region's profile needs no recount.

`rollupdirty` lists the (day, unit) slices written to since the last refresh; PostgreSQL triggers
(migration 0010) fill it from every writer, COPY included. `rollupstate` holds when the rollup was
last built and refreshed, and which definition of the counts built it.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Index, Integer, String, Table, func
from sqlmodel import SQLModel

from models.case.records import Case
from models.db import UTCDateTime
from models.indicators.definitions import COUNTS, Family
from models.ratings import Rating
from models.services import ServiceRecord

metadata = SQLModel.metadata

RATING_COLUMNS = tuple(c.name for c in COUNTS if c.family == Family.RATINGS)
# A transaction's counts under each rating target: "" any target, item_ ratings of the item, staff_ ratings of
# the staff member (and only transactions that had one, as the raw filter says).
RECORD_COLUMNS = (
    "completed_records",
    "staff_completed_records",
    "rated_records",
    "actively_rated_records",
    "item_rated_records",
    "item_actively_rated_records",
    "staff_rated_records",
    "staff_actively_rated_records",
)
CASE_COLUMNS = tuple(c.name for c in COUNTS if c.family in (Family.CASES, Family.FOLLOW_UPS))


def _counts(names: tuple[str, ...]) -> list[Column[int]]:
    return [Column(name, Integer, nullable=False) for name in names]


rating_rollup = Table(
    "ratingrollup",
    metadata,
    Column("day", Date, primary_key=True),
    Column("unit_id", Integer, primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("target", String(32), primary_key=True),
    *_counts(RATING_COLUMNS),
)
# The same counts summed over channels and targets: what a report neither filtered nor grouped by either reads
# (a unit's day is one row here, about ten in ratingrollup).
rating_total_rollup = Table(
    "ratingtotalrollup",
    metadata,
    Column("day", Date, primary_key=True),
    Column("unit_id", Integer, primary_key=True),
    *_counts(RATING_COLUMNS),
)
record_rollup = Table(
    "recordrollup",
    metadata,
    Column("day", Date, primary_key=True),
    Column("unit_id", Integer, primary_key=True),
    *_counts(RECORD_COLUMNS),
)
case_rollup = Table(
    "caserollup",
    metadata,
    Column("day", Date, primary_key=True),
    Column("unit_id", Integer, primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("target", String(32), primary_key=True),
    *_counts(CASE_COLUMNS),
)
# A queue, not a set: writers only append (no unique key to wait on), the refresher takes what it sees.
rollup_dirty = Table(
    "rollupdirty",
    metadata,
    Column("day", Date, nullable=False),
    Column("unit_id", Integer, nullable=False),
    Column("marked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
rollup_state = Table(
    "rollupstate",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # one row: 1
    Column("definition", String(64), nullable=False),  # a digest of the refresh's SQL (rollup_refresh.py)
    Column("built_at", UTCDateTime, nullable=False),  # the last full build
    Column("refreshed_at", UTCDateTime, nullable=False),  # every write committed before this is counted
)

ROLLUP_TABLES = (rating_rollup, rating_total_rollup, record_rollup, case_rollup)

# The raw path's indexes: a period's ratings and cases (a report and a slice's refresh find them by time),
# and a staff member's transactions (a staff report reads the raw tables).
RAW_INDEXES = (
    Index("ix_rating_submitted_at", Rating.__table__.c.submitted_at),  # type: ignore[attr-defined]
    Index("ix_case_opened_at", Case.__table__.c.opened_at),  # type: ignore[attr-defined]
    Index("ix_servicerecord_staff_id", ServiceRecord.__table__.c.staff_id),  # type: ignore[attr-defined]
)
