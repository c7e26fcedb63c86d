"""Monthly rankings (排名通报) of units, windows and staff, and the talk flags (约谈) of units at the bottom.

The figures are the indicators' (models/indicators/: units and staff from its report, windows from
ranking_windows.py over the same count definitions); this module applies the profile's `[ranking]`
formula, ranks with ties, and finds the units that stayed at the bottom. docs/reports.md states the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.indicators.definitions import INDICATORS, Dimension
from models.indicators.filters import IndicatorFilter
from models.indicators.periods import Period, month_days
from models.indicators.report import build_report, score_tables
from models.organisation import Region, Staff, Unit
from models.policy import PinnedPolicy, RankingRules
from models.rankings_windows import window_figures


class RankingKind(StrEnum):
    UNIT = "unit"  # 单位: each unit's own figures
    WINDOW = "window"  # 窗口 (一窗一码): the ratings given through the window's code
    STAFF = "staff"  # 工作人员: staff ratings only


KIND_LABELS_ZH = {RankingKind.UNIT: "单位", RankingKind.WINDOW: "窗口", RankingKind.STAFF: "工作人员"}
INDICATOR_LABELS_ZH = {indicator.name: indicator.label for indicator in INDICATORS}
# Scores are compared as shown (two decimals): two units shown with the same score share the rank.
SCORE_DECIMALS = 2


class RankRow(BaseModel):
    key: int = Field(description="the unit's, window's or staff member's id")
    label: str
    unit_id: int
    unit_name: str
    ratings: int = Field(description="评价数 in the month (adopted first ratings)")
    values: dict[str, float | None] = Field(description="each weighted indicator; null: nothing to measure")
    score: float | None = Field(description="综合得分 0–100; null when not ranked")
    rank: int | None = Field(description="1 = best; equal scores share a rank (1, 2, 2, 4)")
    tied: int = Field(default=1, description="how many share this rank")
    bottom: bool = Field(
        default=False, description="in the bottom talk_bottom of the ranked (ties at the edge included)"
    )
    reason: str | None = Field(default=None, description="why not ranked")


class RankingRead(BaseModel):
    month: str
    kind: RankingKind
    kind_label: str
    policy_code: str
    policy_version: int
    formula: str = Field(description="the formula in words, with its weights")
    weights: dict[str, float]
    missing_as: float
    min_ratings: int
    source: str
    ranked: int = Field(description="how many were ranked")
    rows: list[RankRow]


class TalkMonth(BaseModel):
    month: str
    rank: int
    ranked: int
    score: float
    ratings: int
    values: dict[str, float | None]


class TalkFlag(BaseModel):
    """A unit to be called to a talk (约谈): in the bottom N for M months running, with each month's figures."""

    unit_id: int
    unit_name: str
    months: list[TalkMonth]


@dataclass(frozen=True)
class Figures:
    """One subject's month: who, how many ratings, each indicator's value, and its profile's top score."""

    key: int
    label: str
    unit_id: int
    ratings: int
    indicators: Mapping[str, float | None]
    top_score: float


def month_period(month: str) -> Period:
    return Period(*month_days(month))


def formula_text(rules: RankingRules) -> str:
    """The formula as a reader sees it: 综合得分 = 100 × (0.5 × 满意度得分/满分 + …)."""
    parts = []
    for name, weight in rules.weights.items():
        label = INDICATOR_LABELS_ZH[name] + ("÷满分" if name == "satisfaction_score" else "")
        parts.append(f"{weight:g}×{label}")
    return f"综合得分 = 100 × ({' + '.join(parts)})；无可计算值的指标按 {rules.missing_as:g} 计"


def score_of(values: Mapping[str, float | None], rules: RankingRules, top_score: float) -> float:
    """100 × Σ weight × value; the satisfaction score as a share of the top score; a missing value as missing_as."""
    total = 0.0
    for name, weight in rules.weights.items():
        value = values.get(name)
        if value is None:
            share = rules.missing_as
        elif name == "satisfaction_score":
            share = value / top_score if top_score else 0.0
        else:
            share = value
        total += weight * share
    return round(100 * total, SCORE_DECIMALS)


def rank(figures: list[Figures], rules: RankingRules, unit_names: Mapping[int, str]) -> list[RankRow]:
    """Rows best first: the ranked (competition ranking, ties by score as shown), then those with too few ratings."""
    rows = []
    for fig in figures:
        values: dict[str, float | None] = {name: fig.indicators.get(name) for name in rules.weights}
        eligible = fig.ratings >= rules.min_ratings
        rows.append(
            RankRow(
                key=fig.key,
                label=fig.label,
                unit_id=fig.unit_id,
                unit_name=unit_names.get(fig.unit_id, str(fig.unit_id)),
                ratings=fig.ratings,
                values=values,
                score=score_of(values, rules, fig.top_score) if eligible else None,
                rank=None,
                reason=None if eligible else f"评价数 {fig.ratings} 条，不足 {rules.min_ratings} 条，不参与排名",
            )
        )
    ranked = sorted((r for r in rows if r.score is not None), key=lambda r: (-(r.score or 0), -r.ratings, r.label))
    unranked = sorted((r for r in rows if r.score is None), key=lambda r: (-r.ratings, r.label))
    for position, row in enumerate(ranked, start=1):
        same = [other for other in ranked if other.score == row.score]
        row.rank = position if position == 1 or ranked[position - 2].score != row.score else ranked[position - 2].rank
        row.tied = len(same)
    count = len(ranked)
    for row in ranked:
        # The bottom N of more than N: a unit tied with one inside the edge is inside too.
        assert row.rank is not None
        row.bottom = count > rules.talk_bottom and row.rank + row.tied - 1 > count - rules.talk_bottom
    return ranked + unranked


async def unit_names(session: AsyncSession) -> dict[int, str]:
    return {unit_id: name for unit_id, name in (await session.exec(select(Unit.id, Unit.name))).all() if unit_id}


async def _top_scores(session: AsyncSession) -> dict[int, float]:
    """Each unit's top score: the best level's score in its region's profile (5 nationally, 10 in 汕尾)."""
    rows = (
        await session.exec(select(Unit.id, Region.policy_code).join(Region, col(Region.id) == Unit.region_id))
    ).all()
    tables = await score_tables(session, {code for _unit, code in rows})
    return {unit: max(tables[code].values()) for unit, code in rows if unit is not None}


async def figures_of(
    session: AsyncSession, units: frozenset[int] | None, month: str, kind: RankingKind
) -> list[Figures]:
    """Every subject of the kind with its month's figures, within the units (None: every unit)."""
    flt = IndicatorFilter(period=month_period(month), units=units)
    tops = await _top_scores(session)
    if kind == RankingKind.WINDOW:
        return [
            Figures(w.window_id, w.label, w.unit_id, w.ratings, w.indicators, tops.get(w.unit_id, 0.0))
            for w in await window_figures(session, flt)
        ]
    dimension = Dimension.UNIT if kind == RankingKind.UNIT else Dimension.STAFF
    report = await build_report(session, flt, dimension, drill_down=False)
    staff_units: dict[int, int] = {}
    if kind == RankingKind.STAFF:
        staff_units = {s: u for s, u in (await session.exec(select(Staff.id, Staff.unit_id))).all() if s is not None}
    found = []
    for group in report.groups:
        if group.key is None:
            continue
        key = int(group.key)
        unit_id = key if kind == RankingKind.UNIT else staff_units.get(key, 0)
        found.append(
            Figures(
                key=key,
                label=group.label,
                unit_id=unit_id,
                ratings=group.counts["ratings"].value or 0,
                indicators={name: indicator.value for name, indicator in group.indicators.items()},
                top_score=tops.get(unit_id, 0.0),
            )
        )
    return found


async def build_ranking(
    session: AsyncSession, units: frozenset[int] | None, month: str, kind: RankingKind, pinned: PinnedPolicy
) -> RankingRead:
    """The month's ranking of one kind within the units, by the profile's `[ranking]`."""
    rules = pinned.profile.ranking
    rows = rank(await figures_of(session, units, month, kind), rules, await unit_names(session))
    return RankingRead(
        month=month,
        kind=kind,
        kind_label=KIND_LABELS_ZH[kind],
        policy_code=pinned.code,
        policy_version=pinned.version,
        formula=formula_text(rules),
        weights=dict(rules.weights),
        missing_as=rules.missing_as,
        min_ratings=rules.min_ratings,
        source=rules.source,
        ranked=sum(1 for row in rows if row.rank is not None),
        rows=rows,
    )


def previous_months(month: str, count: int) -> list[str]:
    """`count` months ending with `month`, oldest first."""
    year, number = (int(part) for part in month.split("-"))
    found = []
    for back in range(count - 1, -1, -1):
        index = year * 12 + number - 1 - back
        found.append(f"{index // 12:04d}-{index % 12 + 1:02d}")
    return found


async def talk_flags(
    session: AsyncSession, units: frozenset[int] | None, month: str, pinned: PinnedPolicy
) -> list[TalkFlag]:
    """Units in the bottom `talk_bottom` of the unit ranking in each of the `talk_months` months up to `month`."""
    rules = pinned.profile.ranking
    months = previous_months(month, rules.talk_months)
    at_bottom: dict[int, list[TalkMonth]] = {}
    names: dict[int, str] = {}
    for index, each in enumerate(months):
        ranking = await build_ranking(session, units, each, RankingKind.UNIT, pinned)
        bottom = {row.key: row for row in ranking.rows if row.bottom}
        for key, row in bottom.items():
            if index == 0 or key in at_bottom:
                assert row.rank is not None and row.score is not None
                entry = TalkMonth(
                    month=each, rank=row.rank, ranked=ranking.ranked, score=row.score, ratings=row.ratings,
                    values=row.values,
                )  # fmt: skip
                at_bottom.setdefault(key, []).append(entry)
                names[key] = row.label
        # Running: a unit not at the bottom this month drops out.
        at_bottom = {key: found for key, found in at_bottom.items() if key in bottom}
    return [TalkFlag(unit_id=key, unit_name=names[key], months=found) for key, found in sorted(at_bottom.items())]
