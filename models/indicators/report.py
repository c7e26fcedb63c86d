"""A report: the groups' counts and indicators with their Chinese names, and each count's drill-down link.

The counts come from the rollup or the raw tables (source.py), the indicators from derive.py; this module only names the groups
(unit, region, item, staff, channel, day, month), folds units into subtrees for `subunit`, and
writes the links.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.indicators.compute import Bucket, GroupCounts, GroupKey, empty_counts, total_of
from models.indicators.definitions import (
    COUNTS,
    DIMENSION_LABELS_ZH,
    INDICATORS,
    MEMBER_PATHS,
    Dimension,
    NullReason,
)
from models.indicators.derive import ScoreTables, derive
from models.indicators.filters import IndicatorFilter
from models.indicators.periods import month_days
from models.indicators.source import Source, counted
from models.organisation import Region, Staff, Unit
from models.policy_store import DEFAULT_POLICY, latest_policy
from models.ratings import RatingChannel
from models.services import ServiceItem
from models.suspicion.records import channel_label


class CountRead(BaseModel):
    label: str = Field(description="中文名")
    value: int | None = Field(description="None when the filter leaves it undefined (transactions by channel)")
    drill_down: str | None = Field(description="GET this to list what is counted (same filter, this group)")


class IndicatorRead(BaseModel):
    label: str = Field(description="中文名")
    kind: Literal["rate", "average"]
    value: float | None = Field(description="a rate as a fraction (0.25 = 25%); the score as an average")
    numerator: str = Field(description="the count on top (score_sum: Σ ratings × the level's score)")
    denominator: str
    reason: NullReason | None = Field(default=None, description="why there is no value")
    reason_label: str | None = None


class GroupRead(BaseModel):
    key: str | None = Field(description="the group's id, day or month, or channel; none for the total")
    label: str
    filters: dict[str, str] = Field(description="query parameters selecting this group (for the lists)")
    counts: dict[str, CountRead]
    indicators: dict[str, IndicatorRead]


class PeriodRead(BaseModel):
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    timezone: str = "Asia/Shanghai"


class IndicatorReport(BaseModel):
    period: PeriodRead
    group_by: Dimension
    group_by_label: str
    source: Source = Field(
        description="rollup: the rollup of counts, as of its last refresh; raw: the raw tables, as of now "
        "(a filter or grouping by item or staff, SQLite, or a rollup not refreshed lately)"
    )
    as_of: datetime = Field(
        description="every write committed before this moment is counted; the current-state counts (overdue now, "
        "pending) describe this moment"
    )
    filters: dict[str, str]
    total: GroupRead
    groups: list[GroupRead]


async def score_tables(session: AsyncSession, codes: set[str]) -> ScoreTables:
    """Each profile's score per level, from its latest version (the one the region is pinned to now).

    A region naming a profile that is not loaded is scored by the national one, as intake treats it.
    """
    found: dict[str, dict[str, float]] = {}
    for code in codes:
        pinned = await latest_policy(session, code) or await latest_policy(session, DEFAULT_POLICY)
        if pinned is None:
            raise RuntimeError("no policy profile is loaded; run the policy sync (make run does it at start)")
        found[code] = {rule.level: rule.score for rule in pinned.profile.levels}
    return found


async def build_report(
    session: AsyncSession,
    flt: IndicatorFilter,
    dimension: Dimension,
    subunit_roots: list[int] | None = None,
    drill_down: bool = True,
    rollup_max_age: timedelta | None = None,
) -> IndicatorReport:
    """The report for a resolved filter; `subunit_roots` are the roots whose children make the subunit rows.

    With `rollup_max_age`, the counts come from the rollup when it serves the filter and was refreshed
    at most that long ago (source.py); without, from the raw tables.
    """
    found = await counted(session, flt, dimension, rollup_max_age)
    groups = found.groups
    if dimension == Dimension.SUBUNIT:
        groups = await _fold_subunits(session, groups, flt, subunit_roots or [])
    elif dimension == Dimension.UNIT:
        # Every unit in scope has its row, a unit with nothing to count too (its rates are then null).
        for unit_id in await _units_in_scope(session, flt):
            groups.setdefault(unit_id, empty_counts(flt, dimension))
    total = total_of(groups, flt, dimension)
    codes = {profile for counts in [total, *groups.values()] for profile, _level in counts.rated_levels}
    scores = await score_tables(session, codes)
    labels = await _labels(session, dimension, list(groups))
    rows = []
    for key in sorted(groups, key=_sort_key):
        narrowed = _narrowed(flt, dimension, key, labels)
        rows.append(_group(key, labels.get(key, str(key)), narrowed, groups[key], scores, drill_down))
    # Validated once, as plain data: a ranking of 500 units has 37,000 counts and indicators, and building
    # each as a model of its own took longer than reading the rollup did.
    return IndicatorReport.model_validate(
        {
            "period": PeriodRead(first=flt.period.first, last=flt.period.last),
            "group_by": dimension,
            "group_by_label": DIMENSION_LABELS_ZH[dimension],
            "source": found.source,
            "as_of": found.as_of,
            "filters": flt.params(),
            "total": _group(None, "合计", flt, total, scores, drill_down),
            "groups": rows if dimension != Dimension.NONE else [],
        }
    )


def _group(
    key: GroupKey, label: str, flt: IndicatorFilter, counts: GroupCounts, scores: ScoreTables, drill_down: bool
) -> dict[str, Any]:
    """A GroupRead, as the data it is validated from."""
    params = flt.params()
    derived = derive(counts.counts, counts.rated_levels, scores)
    return {
        "key": None if key is None else str(key.unit_id if isinstance(key, Bucket) else key),
        "label": label,
        "filters": params,
        "counts": {
            c.name: {
                "label": c.label,
                "value": counts.counts[c.name],
                "drill_down": f"{MEMBER_PATHS[c.members]}?{urlencode({'subset': c.name, **params})}"
                if drill_down and counts.counts[c.name] is not None
                else None,
            }
            for c in COUNTS
        },
        "indicators": {
            i.name: {
                "label": i.label,
                "kind": i.kind,
                "value": derived[i.name].value,
                "numerator": i.numerator,
                "denominator": i.denominator,
                "reason": derived[i.name].reason,
                "reason_label": derived[i.name].reason_label,
            }
            for i in INDICATORS
        },
    }


def _sort_key(key: object) -> tuple[int, str]:
    if isinstance(key, Bucket):
        return (0 if key.own_only else 1, f"{key.unit_id:010d}")
    if isinstance(key, RatingChannel):
        return (0, f"{list(RatingChannel).index(key):02d}")
    return (0, f"{key:010d}" if isinstance(key, int) else str(key))


def _narrowed(flt: IndicatorFilter, dimension: Dimension, key: object, labels: dict[object, str]) -> IndicatorFilter:
    """The group's own filter, as the query parameters of its drill-down lists."""
    if isinstance(key, Bucket):
        return flt.narrowed(unit_id=key.unit_id, include_subunits=not key.own_only)
    if dimension == Dimension.UNIT:
        return flt.narrowed(unit_id=key, include_subunits=False)
    if dimension == Dimension.REGION:
        return flt.narrowed(region_id=key, region_code=labels.get(("code", key)))
    if dimension == Dimension.ITEM:
        return flt.narrowed(item_id=key)
    if dimension == Dimension.STAFF:
        return flt.narrowed(staff_id=key)
    if dimension == Dimension.CHANNEL:
        return flt.narrowed(channel=RatingChannel(str(key)))
    if dimension == Dimension.DAY:
        day = date.fromisoformat(str(key))
        return flt.narrowed(period=flt.period.clip(day, day))
    if dimension == Dimension.MONTH:
        return flt.narrowed(period=flt.period.clip(*month_days(str(key))))
    return flt


async def _labels(session: AsyncSession, dimension: Dimension, keys: list[GroupKey]) -> dict[object, str]:
    """The Chinese names of the groups (and each region's code, for its links)."""
    ids = [key for key in keys if isinstance(key, int)]
    found: dict[object, str] = {}
    if dimension in (Dimension.UNIT, Dimension.SUBUNIT):
        units = await session.exec(select(Unit.id, Unit.name))
        names = dict(units.all())
        for key in keys:
            if isinstance(key, Bucket):
                found[key] = names.get(key.unit_id, str(key.unit_id)) + ("（本级）" if key.own_only else "")
            elif isinstance(key, int):
                found[key] = names.get(key, str(key))
    elif dimension == Dimension.REGION:
        for region_id, name, code in (
            await session.exec(select(Region.id, Region.name, Region.code).where(col(Region.id).in_(ids)))
        ).all():
            found[region_id], found[("code", region_id)] = name, code
    elif dimension == Dimension.ITEM:
        items = await session.exec(select(ServiceItem.id, ServiceItem.name).where(col(ServiceItem.id).in_(ids)))
        found.update(dict(items.all()))
    elif dimension == Dimension.STAFF:
        staff = await session.exec(select(Staff.id, Staff.name, Staff.staff_no).where(col(Staff.id).in_(ids)))
        found.update({staff_id: f"{name}（{staff_no}）" for staff_id, name, staff_no in staff.all()})
    elif dimension == Dimension.CHANNEL:
        found.update({key: channel_label(str(key)) for key in keys if key is not None})
    return found


async def _fold_subunits(
    session: AsyncSession, groups: dict[GroupKey, GroupCounts], flt: IndicatorFilter, roots: list[int]
) -> dict[GroupKey, GroupCounts]:
    """Units into rows: with one root, its own figures and each child's subtree; with several, each root's subtree."""
    parent_of = {unit: parent for unit, parent in (await session.exec(select(Unit.id, Unit.parent_id))).all() if unit}
    if len(roots) == 1:
        root = roots[0]
        buckets = {root: Bucket(root, own_only=True)} | {
            unit: Bucket(unit, own_only=False) for unit, parent in parent_of.items() if parent == root
        }
    else:
        buckets = {root: Bucket(root, own_only=False) for root in roots}
    # Every row is shown, an empty one too: a unit below with nothing to count is still a unit below.
    folded: dict[GroupKey, GroupCounts] = {bucket: empty_counts(flt, Dimension.SUBUNIT) for bucket in buckets.values()}
    for unit_id, counts in groups.items():
        bucket = _bucket_of(unit_id, buckets, parent_of)
        if bucket is not None:
            folded[bucket].add(counts)
    return folded


async def _units_in_scope(session: AsyncSession, flt: IndicatorFilter) -> list[int]:
    query = select(Unit.id)
    if flt.units is not None:
        query = query.where(col(Unit.id).in_(sorted(flt.units)))
    if flt.region_id is not None:
        query = query.where(Unit.region_id == flt.region_id)
    return [unit_id for unit_id in (await session.exec(query)).all() if unit_id is not None]


def _bucket_of(unit_id: object, buckets: dict[int, Bucket], parent_of: dict[int, int | None]) -> Bucket | None:
    """The row a unit's figures go to: the nearest bucket at or above it."""
    current = unit_id if isinstance(unit_id, int) else None
    seen: set[int] = set()
    while current is not None and current not in seen:
        if current in buckets:
            return buckets[current]
        seen.add(current)
        current = parent_of.get(current)
    return None
