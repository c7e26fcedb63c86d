"""A window's month (一窗一码): the figures of the ratings given through its code, by the indicators' own definitions.

A rater who proves at a window's code that a record is theirs gets a rating invitation issued by
"window:<code>" (pages/citizen/windows.py); once used, the record's ratings were given at that window.
The counts are the indicators' conditions (models/indicators/counting.py) over the ratings and the
cases of those records, grouped by window, and the indicators derive from them as for any group.
A record checked at two windows' codes (the rater tried two counters) counts for the first code in
alphabetical order, so each rating counts for one window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.indicators.compute import GroupCounts, empty_counts
from models.indicators.counting import CONDITIONS, LEAD, family_select, filter_conditions
from models.indicators.definitions import COUNTS, Dimension, Family
from models.indicators.derive import derive
from models.indicators.filters import IndicatorFilter
from models.indicators.report import score_tables
from models.organisation import Region
from models.rating_invitations import RatingInvitation
from models.ratings import Rating
from models.windows import ServiceWindow

WINDOW_ISSUER = "window:"


@dataclass(frozen=True)
class WindowFigures:
    window_id: int
    label: str
    unit_id: int
    ratings: int
    indicators: Mapping[str, float | None]


def _window_records() -> Any:
    """Each record rated through a window's code, and that window's issuer text ("window:<code>")."""
    return (
        select(col(RatingInvitation.record_id).label("record_id"), func.min(RatingInvitation.issued_by).label("issuer"))
        .where(col(RatingInvitation.issued_by).startswith(WINDOW_ISSUER), col(RatingInvitation.used_at).is_not(None))
        .group_by(col(RatingInvitation.record_id))
        .subquery("window_record")
    )


async def window_counts(session: AsyncSession, flt: IndicatorFilter) -> dict[str, GroupCounts]:
    """The rating and case counts of each window's ratings, by issuer text."""
    groups: dict[str, GroupCounts] = {}
    for family, record_column in ((Family.RATINGS, col(Rating.record_id)), (Family.CASES, col(LEAD.record_id))):
        windows = _window_records()
        names = [count.name for count in COUNTS if count.family == family]
        extra = [Region.policy_code, Rating.level] if family == Family.RATINGS else []
        columns = [
            windows.c.issuer,
            *extra,
            *(func.count().filter(CONDITIONS[name](flt, Dimension.NONE)).label(name) for name in names),
        ]
        query = (
            family_select(family, *columns)
            .join(windows, windows.c.record_id == record_column)
            .where(*filter_conditions(family, flt, Dimension.NONE))
            .group_by(windows.c.issuer, *extra)
        )
        for row in (await session.exec(query)).all():
            mapping = row._mapping
            group = groups.setdefault(mapping["issuer"], empty_counts(flt, Dimension.NONE))
            part = GroupCounts(counts={name: int(mapping[name]) for name in names})
            if family == Family.RATINGS:
                level = mapping["level"]
                part.rated_levels[(mapping["policy_code"], getattr(level, "value", level))] = int(mapping["ratings"])
            group.add(part)
    return groups


async def window_figures(session: AsyncSession, flt: IndicatorFilter) -> list[WindowFigures]:
    """Every active window of the units in scope with its figures (a window rated nothing has zero ratings)."""
    query = select(ServiceWindow)
    if flt.units is not None:
        query = query.where(col(ServiceWindow.unit_id).in_(sorted(flt.units)))
    windows = (await session.exec(query)).all()
    counts = await window_counts(session, flt)
    scores = await score_tables(session, {code for c in counts.values() for code, _level in c.rated_levels})
    found = []
    for window in windows:
        assert window.id is not None
        mine = counts.get(WINDOW_ISSUER + window.code)
        if mine is None and not window.active:
            continue  # a closed window with nothing this month is not listed
        mine = mine or empty_counts(flt, Dimension.NONE)
        derived = derive(mine.counts, mine.rated_levels, scores)
        found.append(
            WindowFigures(
                window_id=window.id,
                label=f"{window.name}（{window.code}）",
                unit_id=window.unit_id,
                ratings=mine.counts.get("ratings") or 0,
                indicators={name: value.value for name, value in derived.items()},
            )
        )
    return found
