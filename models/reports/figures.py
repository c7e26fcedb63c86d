"""A scope's month as one JSON-able dict: the figures a monthly report shows and a published version freezes.

Everything comes from the public functions of the indicators (models/indicators/report.py), the
rankings (models/rankings.py) and concentrated problems (models/concentration.py), plus the list
of overdue cases. No rater data: units, items, windows and staff by name, cases by number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case
from models.case.vocabulary import TERMINAL_STAGES
from models.concentration import find_concentrated
from models.indicators.definitions import Dimension
from models.indicators.filters import IndicatorFilter
from models.indicators.report import GroupRead, build_report
from models.organisation import Unit
from models.policy import PinnedPolicy
from models.rankings import RankingKind, build_ranking, month_period, talk_flags
from models.ratings import Rating
from models.services import ServiceItem, ServiceRecord

FIGURES_SCHEMA = 1
SUMMARY_COUNTS = (
    "ratings",
    "good_ratings",
    "bad_ratings",
    "completed_records",
    "rated_records",
    "cases",
    "rectification_cases",
    "rectified_cases",
    "rectified_on_time_cases",
    "escalated_cases_rung_1",
    "overdue_open_cases",
    "appeal_upheld_cases",
    "not_adopted_ratings",
)
SUMMARY_INDICATORS = (
    "satisfaction_score",
    "good_rate",
    "bad_rate",
    "rating_rate",
    "callback_rate",
    "rectification_rate",
    "on_time_rectification_rate",
    "rectification_satisfaction_rate",
)
TABLE_COUNTS = ("ratings", "good_ratings", "bad_ratings", "cases", "rectified_cases")
TABLE_INDICATORS = ("satisfaction_score", "good_rate", "rectification_rate", "on_time_rectification_rate")
MAX_OVERDUE_LISTED = 200


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: a unit with its subtree, or a region's units (within the caller's sight)."""

    key: str  # "unit:<id>" or "region:<id>"
    label: str
    units: frozenset[int]
    unit_id: int | None = None
    region_id: int | None = None


def _round(value: float | None) -> float | None:
    # Four decimals: enough for a rate in per cent with two decimals, and stable in JSON.
    return None if value is None else round(value, 4)


def _group(group: GroupRead, counts: tuple[str, ...], indicators: tuple[str, ...]) -> dict[str, Any]:
    return {
        "key": group.key,
        "label": group.label,
        "counts": {name: group.counts[name].value for name in counts},
        "indicators": {name: _round(group.indicators[name].value) for name in indicators},
    }


def _labels(group: GroupRead, counts: tuple[str, ...], indicators: tuple[str, ...]) -> dict[str, dict[str, str]]:
    return {
        "counts": {name: group.counts[name].label for name in counts},
        "indicators": {name: group.indicators[name].label for name in indicators},
        "kinds": {name: group.indicators[name].kind for name in indicators},
    }


async def overdue_cases(session: AsyncSession, units: frozenset[int]) -> tuple[int, list[dict[str, Any]]]:
    """The scope's open cases overdue now (any month's), oldest first: how many, and the first ones."""
    query = (
        select(Case, Unit.name, ServiceItem.name)
        .join(Unit, col(Unit.id) == Case.unit_id)
        .join(Rating, col(Rating.id) == Case.rating_id)
        .join(ServiceRecord, col(ServiceRecord.id) == Rating.record_id)
        .join(ServiceItem, col(ServiceItem.id) == ServiceRecord.item_id)
        .where(
            col(Case.overdue).is_(True),
            col(Case.stage).not_in(list(TERMINAL_STAGES)),
            col(Rating.adopted).is_(True),
            col(Case.unit_id).in_(sorted(units)),
        )
        .order_by(col(Case.opened_at), col(Case.id))
    )
    rows = (await session.exec(query)).all()
    listed = [
        {
            "case_id": case.id,
            "unit": unit,
            "item": item,
            "stage": case.stage.value,
            "rung": case.escalation_rung,
            "opened_at": case.opened_at.isoformat(),
            "next_due_at": case.next_due_at.isoformat() if case.next_due_at else None,
        }
        for case, unit, item in rows[:MAX_OVERDUE_LISTED]
    ]
    return len(rows), listed


async def build_figures(
    session: AsyncSession, scope: ReportScope, month: str, pinned: PinnedPolicy, as_of: datetime
) -> dict[str, Any]:
    """Every figure of the month's report for the scope, as plain JSON values."""
    period = month_period(month)
    flt = IndicatorFilter(period=period, units=scope.units)
    total = (await build_report(session, flt, Dimension.NONE, drill_down=False)).total
    units = (await build_report(session, flt, Dimension.UNIT, drill_down=False)).groups
    items = (await build_report(session, flt, Dimension.ITEM, drill_down=False)).groups
    rankings = {
        kind.value: (await build_ranking(session, scope.units, month, kind, pinned)).model_dump(mode="json")
        for kind in RankingKind
    }
    talks = [flag.model_dump(mode="json") for flag in await talk_flags(session, scope.units, month, pinned)]
    _start, end = period.bounds
    problems = await find_concentrated(
        session, set(scope.units), end, pinned.profile.concentration, pinned.profile.tags
    )
    overdue_count, overdue_listed = await overdue_cases(session, scope.units)
    return {
        "schema": FIGURES_SCHEMA,
        "title": f"{scope.label} {period.first.year}年{period.first.month}月政务服务“好差评”月度报告",
        "scope": {"key": scope.key, "label": scope.label, "unit_id": scope.unit_id, "region_id": scope.region_id},
        "month": month,
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat(), "timezone": "Asia/Shanghai"},
        "as_of": as_of.isoformat(),
        "policy": {"code": pinned.code, "version": pinned.version},
        "labels": {
            "summary": _labels(total, SUMMARY_COUNTS, SUMMARY_INDICATORS),
            "table": _labels(total, TABLE_COUNTS, TABLE_INDICATORS),
        },
        "summary": _group(total, SUMMARY_COUNTS, SUMMARY_INDICATORS),
        "units": [_group(group, TABLE_COUNTS, TABLE_INDICATORS) for group in units],
        "items": [_group(group, TABLE_COUNTS, TABLE_INDICATORS) for group in items],
        "rankings": rankings,
        "talks": talks,
        "concentrated": {
            "count": len(problems),
            "until": end.isoformat(),
            "min_bad": pinned.profile.concentration.min_bad,
            "within": str(pinned.profile.concentration.within),
            "problems": [
                {
                    "kind": p.kind.value,
                    "kind_label": p.kind_label,
                    "name": p.name,
                    "unit": p.unit_name,
                    "bad_count": p.bad_count,
                }  # fmt: skip
                for p in problems
            ],
        },
        "overdue": {"count": overdue_count, "cases": overdue_listed},
    }
