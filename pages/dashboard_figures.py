"""The dashboard's figures drawn from indicator reports: key-figure tiles with their definitions, and charts.

Pure: the reports come from models/indicators/report.py (the same answer `GET /api/v1/indicators` gives);
this module only picks figures, formats them as people read them, and links each count to the page listing
what it counts (`/dashboard/list`, with the group's own filter, so the list's total is the number shown).
A chart is data (categories and series, each value with its display text and its link), from which the
page draws both the ECharts chart (pages/static/dashboard.js) and the table that stands in for it without
JavaScript and for screen readers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal
from urllib.parse import urlencode

from models.indicators.definitions import (
    COUNT_BY_NAME,
    INDICATOR_BY_NAME,
    LEVEL_COUNT,
    RUNGS,
    Family,
)
from models.indicators.periods import Period
from models.indicators.report import GroupRead, IndicatorReport
from models.ratings import LEVEL_LABELS_ZH, RatingLevel

LIST_PATH = "/dashboard/list"

# Where each family's figures come from and what they leave out, in the words of docs/indicators.md.
FAMILY_NOTES_ZH = {
    Family.RATINGS: "按评价提交时间（北京时间）计入时段；只计首次评价，不含追评和申诉成立（不予采纳）的评价，"
    "含系统默认评价。",
    Family.RECORDS: "按办件办结时间计入时段；办结后任何时间作出的评价都算已评价。办件没有评价渠道，"
    "按评价渠道筛选时不计算。",
    Family.CASES: "按差评工单生成时间计入时段，办理情况以当前为准；不含申诉成立（不予采纳）的工单。",
    Family.FOLLOW_UPS: "整改后的追评，随其工单计入时段和单位。",
}
NOTES_ZH = {
    "satisfaction_score": "各等级的分值取单位所在地区现行评价规则；范围内地区分值不同时不计算平均分，请按地区查看。",
    "active_rating_rate": "主动评价不含系统默认评价。",
    "callback_rate": "有一次回访记录即算已回访，无论是否联系上评价人。",
    "on_time_rectification_rate": "按时：整改期限（立行立改或列入台账）从未超期。",
    "rectification_satisfaction_rate": "满意：评价人答复满意，或按地区规则逾期未答复视为满意。",
    "overdue_open_cases": "当前仍在办理、已超过办理时限的工单，按目前达到的督办级别分列。",
    "cases": "每条差评生成一张工单；一次办多件的评价只生成一张。",
}

TileKind = Literal["count", "rate", "average"]


@dataclass(frozen=True)
class Figure:
    """A count as shown: its name, Chinese label, value and the list of what it counts."""

    name: str
    label: str
    value: int | None
    href: str | None

    @property
    def text(self) -> str:
        return count_text(self.value)


@dataclass(frozen=True)
class Tile:
    name: str
    label: str
    kind: TileKind
    text: str  # the figure as people read it: "66.7%", "4.25", "1,234", "—"
    note: str  # why there is no value, when there is none
    formula: str
    definition: str
    figure: Figure | None  # a count tile's own count (its number is the link)
    parts: list[Figure]  # the counts a ratio is made of, or the rungs of the overdue count


@dataclass
class Series:
    name: str
    unit: Literal["count", "percent", "score"]
    values: list[float | int | None] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    links: list[str | None] = field(default_factory=list)

    def add(self, value: float | int | None, link: str | None = None) -> None:
        """One category's value: percent as 0–100, rounded as shown; its text; its list when it is a count."""
        if self.unit == "count":
            self.values.append(value)
            self.texts.append(count_text(value if isinstance(value, int) or value is None else int(value)))
            self.links.append(link if value else None)
            return
        shown = None if value is None else round(value * 100, 1) if self.unit == "percent" else round(value, 2)
        self.values.append(shown)
        self.texts.append(indicator_text(value, "rate" if self.unit == "percent" else "average"))
        self.links.append(None)


@dataclass
class Chart:
    id: str
    title: str
    kind: Literal["trend", "pie", "ranking", "bars"]
    category_label: str
    categories: list[str] = field(default_factory=list)
    category_links: list[str | None] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)


def count_text(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def indicator_text(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.1f}%" if kind == "rate" else f"{value:.2f}"


def list_href(subset: str, filters: dict[str, str]) -> str:
    """The page listing what a count counts, for a group's filter (its query parameters as the API takes them)."""
    return f"{LIST_PATH}?{urlencode({'subset': subset, **filters})}"


def figure(group: GroupRead, name: str) -> Figure:
    count = group.counts[name]
    href = list_href(name, group.filters) if count.value is not None else None
    return Figure(name, count.label, count.value, href)


def _definition(name: str) -> tuple[str, str]:
    """A figure's formula and what it counts, in Chinese, from its definition."""
    if name in INDICATOR_BY_NAME:
        indicator = INDICATOR_BY_NAME[name]
        denominator = COUNT_BY_NAME[indicator.denominator]
        if indicator.numerator == "score_sum":
            formula = f"{indicator.label} = Σ（各等级评价数 × 该等级分值）÷ {denominator.label}"
        else:
            formula = f"{indicator.label} = {COUNT_BY_NAME[indicator.numerator].label} ÷ {denominator.label}"
        family = denominator.family
    else:
        count = COUNT_BY_NAME[name]
        formula, family = count.label, count.family
    notes = [note for note in (NOTES_ZH.get(name), FAMILY_NOTES_ZH[family]) if note]
    return formula, " ".join(notes)


def tile(group: GroupRead, name: str) -> Tile:
    """A key figure of a group: an indicator with the counts it divides, or a count (overdue: with its rungs)."""
    formula, definition = _definition(name)
    if name in INDICATOR_BY_NAME:
        indicator = group.indicators[name]
        parts = [figure(group, indicator.denominator)]
        if indicator.numerator != "score_sum":
            parts.insert(0, figure(group, indicator.numerator))
        return Tile(
            name, indicator.label, indicator.kind, indicator_text(indicator.value, indicator.kind),
            indicator.reason_label or "", formula, definition, None, parts,
        )  # fmt: skip
    own = figure(group, name)
    rungs = [figure(group, f"{name}_rung_{n}") for n in RUNGS] if f"{name}_rung_1" in group.counts else []
    return Tile(name, own.label, "count", own.text, "", formula, definition, own, rungs)


def tiles(report: IndicatorReport, names: tuple[str, ...]) -> list[Tile]:
    return [tile(report.total, name) for name in names]


# ---- charts ------------------------------------------------------------------------------------


def _days(period: Period, by_month: bool) -> Iterator[str]:
    """Every day (or month) of the period as the report keys it, so a day with nothing is drawn as nothing."""
    day = period.first
    while day <= period.last:
        yield day.strftime("%Y-%m") if by_month else day.isoformat()
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1) if by_month else day + timedelta(days=1)


def trend_chart(report: IndicatorReport, by_month: bool) -> Chart:
    """Ratings and bad reviews by day or month, with the bad rate and the satisfaction score."""
    period = Period(report.period.first, report.period.last)
    groups = {group.key: group for group in report.groups}
    chart = Chart(
        "trend", f"评价趋势（按{'月' if by_month else '日'}）", "trend", "月份" if by_month else "日期",
        series=[Series("评价数", "count"), Series("差评数", "count"), Series("差评率", "percent"),
                Series("满意度得分", "score")],
    )  # fmt: skip
    ratings, bad, bad_rate, score = chart.series
    for key in _days(period, by_month):
        group = groups.get(key)
        chart.categories.append(key if by_month else key[5:])
        chart.category_links.append(None)
        if group is None:
            for series, empty in ((ratings, 0), (bad, 0), (bad_rate, None), (score, None)):
                series.add(empty)
            continue
        for series, name in ((ratings, "ratings"), (bad, "bad_ratings")):
            shown = figure(group, name)
            series.add(shown.value, shown.href)
        bad_rate.add(group.indicators["bad_rate"].value)
        score.add(group.indicators["satisfaction_score"].value)
    return chart


def levels_chart(report: IndicatorReport) -> Chart:
    """The five levels' shares of the ratings."""
    total = report.total
    chart = Chart(
        "levels", "评价等级分布", "pie", "评价等级", series=[Series("评价数", "count"), Series("占比", "percent")]
    )
    ratings = total.counts["ratings"].value or 0
    for level in RatingLevel:
        shown = figure(total, LEVEL_COUNT[level])
        chart.categories.append(LEVEL_LABELS_ZH[level])
        chart.category_links.append(None)
        chart.series[0].add(shown.value, shown.href)
        chart.series[1].add(shown.value / ratings if ratings and shown.value is not None else None)
    return chart


def channels_chart(report: IndicatorReport) -> Chart:
    """Ratings by channel (评价渠道), with their bad reviews."""
    chart = Chart(
        "channels", "评价渠道构成", "pie", "评价渠道",
        series=[Series("评价数", "count"), Series("差评数", "count"), Series("差评率", "percent")],
    )  # fmt: skip
    for group in report.groups:
        chart.categories.append(group.label)
        chart.category_links.append(None)
        for series, name in zip(chart.series[:2], ("ratings", "bad_ratings"), strict=True):
            shown = figure(group, name)
            series.add(shown.value, shown.href)
        chart.series[2].add(group.indicators["bad_rate"].value)
    return chart


def units_chart(report: IndicatorReport, dashboard_of: Callable[[dict[str, str]], str]) -> Chart:
    """Units ranked by good rate (a unit without ratings last); each unit opens its own dashboard.

    `dashboard_of` turns a group's filter into the dashboard narrowed to it. Good rate, not the score, ranks:
    it compares across regions whose scores differ.
    """
    chart = Chart(
        "units", "单位排名（按好评率）", "ranking", "单位",
        series=[Series("好评率", "percent"), Series("满意度得分", "score"), Series("评价数", "count"),
                Series("差评数", "count"), Series("当前超时工单数", "count")],
    )  # fmt: skip

    def rank(group: GroupRead) -> tuple[bool, float, str]:
        good = group.indicators["good_rate"].value
        return (good is None, -(good or 0.0), group.label)

    for group in sorted(report.groups, key=rank):
        chart.categories.append(group.label)
        chart.category_links.append(dashboard_of(group.filters))
        chart.series[0].add(group.indicators["good_rate"].value)
        chart.series[1].add(group.indicators["satisfaction_score"].value)
        for series, name in zip(chart.series[2:], ("ratings", "bad_ratings", "overdue_open_cases"), strict=True):
            shown = figure(group, name)
            series.add(shown.value, shown.href)
    return chart


def rungs_chart(report: IndicatorReport) -> Chart:
    """Open overdue cases by the escalation rung they stand at now, and cases that ever reached each rung."""
    total = report.total
    chart = Chart(
        "rungs", "超时工单（按督办级别）", "bars", "督办级别",
        series=[Series("当前处于该级", "count"), Series("曾达该级", "count")],
    )  # fmt: skip
    for n in RUNGS:
        chart.categories.append(f"第{n}级")
        chart.category_links.append(None)
        for series, name in zip(
            chart.series, (f"overdue_open_cases_rung_{n}", f"escalated_cases_rung_{n}"), strict=True
        ):
            shown = figure(total, name)
            series.add(shown.value, shown.href)
    return chart
