"""Computing the counts of a report: one GROUP BY query per family over the raw tables, then the groups.

Every count adds up across groups (each row of a family lies in exactly one group), so the total is
the sum of the groups and a subtree is the sum of its units: `GroupCounts.add` is all a rollup needs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, text
from sqlmodel.ext.asyncio.session import AsyncSession

from models.indicators.counting import CONDITIONS, DIFFERENCES, family_select, filter_conditions, group_key
from models.indicators.definitions import COUNTS, Dimension, Family
from models.indicators.filters import IndicatorFilter
from models.organisation import Region
from models.ratings import Rating


@dataclass(frozen=True)
class Bucket:
    """A row of group_by=subunit: a unit with its whole subtree, or a root unit's own figures (own_only)."""

    unit_id: int
    own_only: bool


GroupKey = str | int | Bucket | None


@dataclass
class GroupCounts:
    """A group's counts, and its ratings by (profile code, level) for the satisfaction score.

    A count is None when it is not defined under the filter (transactions by rating channel).
    """

    counts: dict[str, int | None] = field(default_factory=dict)
    rated_levels: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, other: GroupCounts) -> None:
        """Fold another group in (a subtree, a total, a rollup's rows): counts are additive."""
        for name, value in other.counts.items():
            mine = self.counts.get(name, 0)
            self.counts[name] = None if value is None or mine is None else mine + value
        for key, value in other.rated_levels.items():
            self.rated_levels[key] = self.rated_levels.get(key, 0) + value


def empty_counts(flt: IndicatorFilter, dimension: Dimension) -> GroupCounts:
    """Zero for every count; None for those the filter leaves undefined."""
    undefined = undefined_families(flt, dimension)
    return GroupCounts(counts={c.name: None if c.family in undefined else 0 for c in COUNTS})


def undefined_families(flt: IndicatorFilter, dimension: Dimension) -> set[Family]:
    # A transaction has no rating channel: by channel, only ratings and cases are counted.
    return {Family.RECORDS} if flt.channel is not None or dimension == Dimension.CHANNEL else set()


async def count_groups(
    session: AsyncSession, flt: IndicatorFilter, dimension: Dimension
) -> dict[GroupKey, GroupCounts]:
    """Every count of every group with any row, by the dimension's key (None: the one group)."""
    groups: dict[GroupKey, GroupCounts] = defaultdict(lambda: empty_counts(flt, dimension))
    if dimension == Dimension.NONE:
        groups[None]  # noqa: B018 - the one group exists even with nothing in it
    undefined = undefined_families(flt, dimension)
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # JIT-compiling these many-FILTER aggregates costs more than running them: at a million ratings a
        # month's case counts took 0.96 s with it and 0.13 s without (scripts/bench_indicators.py). This
        # transaction only.
        await connection.execute(text("SET LOCAL jit = off"))
    for family in Family:
        if family in undefined:
            continue
        names = [count.name for count in COUNTS if count.family == family and count.name not in DIFFERENCES]
        key = group_key(family, dimension)
        keys = [key.label("group_key")] if key is not None else []
        extra = [Region.policy_code, Rating.level] if family == Family.RATINGS else []
        columns = [
            *keys,
            *extra,
            *(func.count().filter(CONDITIONS[name](flt, dimension)).label(name) for name in names),
        ]
        query = family_select(family, *columns).where(*filter_conditions(family, flt, dimension))
        if keys or extra:
            query = query.group_by(*([key] if key is not None else []), *extra)
        for row in (await session.exec(query)).all():
            mapping = row._mapping
            group = groups[group_key_value(mapping["group_key"]) if keys else None]
            part = GroupCounts(counts={name: int(mapping[name]) for name in names})
            for name, (whole, less) in DIFFERENCES.items():
                if whole in part.counts:
                    part.counts[name] = int(mapping[whole]) - int(mapping[less])
            if family == Family.RATINGS:
                level = mapping["level"]
                part.rated_levels[(mapping["policy_code"], getattr(level, "value", level))] = int(mapping["ratings"])
            group.add(part)
    return dict(groups)


def group_key_value(value: object) -> GroupKey:
    """Group keys as they come back: ids, day or month text, a channel."""
    if value is None or isinstance(value, int | str):
        return getattr(value, "value", value)  # a StrEnum is a str: keep its plain value
    raise TypeError(f"unexpected group key {value!r}")


def total_of(groups: dict[GroupKey, GroupCounts], flt: IndicatorFilter, dimension: Dimension) -> GroupCounts:
    """The whole report: the sum of its groups."""
    total = empty_counts(flt, dimension)
    for group in groups.values():
        total.add(group)
    return total
