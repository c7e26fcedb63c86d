"""What a report or a drill-down list covers: the period, the units, and the optional item, staff, channel, target.

A filter is resolved against the caller's scope before it reaches SQL (api/indicators.py): `units`
is then the exact set of unit ids allowed, or None for every unit (an administrator asking for all).
`params()` turns a filter back into the query string that selects the same rows, which is how each
count's drill-down link is built.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.indicators.definitions import Dimension
from models.indicators.periods import Period
from models.ratings import RatingChannel, RatingTarget


@dataclass(frozen=True)
class IndicatorFilter:
    period: Period
    # The unit ids in scope (the asked unit's subtree, or the caller's own scope), None: every unit.
    units: frozenset[int] | None = None
    # As asked, to reproduce the filter in a link: a unit, and whether its subtree is included.
    unit_id: int | None = None
    include_subunits: bool = True
    region_id: int | None = None
    region_code: str | None = None
    item_id: int | None = None
    staff_id: int | None = None
    channel: RatingChannel | None = None
    target: RatingTarget | None = None

    def rating_target(self, dimension: Dimension) -> RatingTarget | None:
        """The rating target the figures are limited to: a staff member's figures are their staff ratings."""
        if self.staff_id is not None or dimension == Dimension.STAFF:
            return RatingTarget.STAFF
        return self.target

    def narrowed(self, **changes: object) -> IndicatorFilter:
        """The same filter, narrowed to one group (a unit, a day, a channel …)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def params(self) -> dict[str, str]:
        """The query parameters that select exactly this filter's rows (scope is the caller's own)."""
        found = {"from": self.period.first.isoformat(), "to": self.period.last.isoformat()}
        if self.unit_id is not None:
            found["unit_id"] = str(self.unit_id)
            if not self.include_subunits:
                found["include_subunits"] = "false"
        if self.region_code is not None:
            found["region"] = self.region_code
        if self.item_id is not None:
            found["item_id"] = str(self.item_id)
        if self.staff_id is not None:
            found["staff_id"] = str(self.staff_id)
        if self.channel is not None:
            found["channel"] = self.channel.value
        if self.target is not None:
            found["target"] = self.target.value
        return found
