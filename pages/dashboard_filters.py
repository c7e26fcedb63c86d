"""The dashboard's filter (数据看板筛选): a period (a preset or a range), a region, a unit with or without its
subunits, a rating channel.

The page reads the query string as text and checks it here, so a bad value is a Chinese message beside the
form instead of a bare error page. The result is the indicators API's own `FilterQuery`: api/indicator_scope.py
then checks it against the database and the caller's scope exactly as it does for `GET /api/v1/indicators`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query

from api.indicator_scope import FilterQuery
from models.indicators.definitions import Dimension
from models.indicators.periods import Period, china_today
from models.ratings import RatingChannel
from models.suspicion.records import CHANNEL_LABELS_ZH

PERIOD_LABELS_ZH = {"today": "今日", "this_month": "本月", "last_month": "上月", "range": "自定义时间段"}
# A trend by day stays readable up to two months; a longer period is drawn by month.
MAX_DAYS_BY_DAY = 62
# Ten years by month is 120 points; a longer range is a typing slip, not a question anyone asks.
MAX_RANGE_DAYS = 3660


class FilterError(Exception):
    """A filter value the page cannot use: the field's Chinese name and what is wrong, shown beside the form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class DashboardFilter:
    """What the dashboard shows: the period chosen (and its days), the scope narrowed, the channel."""

    preset: str
    period: Period
    region: str = ""
    unit_id: int | None = None
    include_subunits: bool = True
    channel: str = ""

    @property
    def trend_dimension(self) -> Dimension:
        return Dimension.DAY if self.period.days <= MAX_DAYS_BY_DAY else Dimension.MONTH

    def query(self) -> FilterQuery:
        """The indicators API's filter for the same figures."""
        return FilterQuery(
            first=self.period.first.isoformat(),
            last=self.period.last.isoformat(),
            unit_id=self.unit_id,
            include_subunits=self.include_subunits,
            region=self.region or None,
            item_id=None,
            staff_id=None,
            channel=self.channel or None,
            target=None,
        )

    def form(self) -> dict[str, str]:
        """The form's values as they stand."""
        # A preset's own dates are said on the page; the date fields are for a range.
        ranged = self.preset == "range"
        return {
            "period": self.preset,
            "from": self.period.first.isoformat() if ranged else "",
            "to": self.period.last.isoformat() if ranged else "",
            "region": self.region,
            "unit_id": "" if self.unit_id is None else str(self.unit_id),
            "include_subunits": "yes" if self.include_subunits else "no",
            "channel": self.channel,
        }

    def query_string(self) -> str:
        """This filter as a dashboard URL's query: a preset stays a preset (本月 tomorrow is tomorrow's month)."""
        form = self.form()
        params = {"period": self.preset}
        if self.preset == "range":
            params |= {"from": self.period.first.isoformat(), "to": self.period.last.isoformat()}
        for key in ("region", "unit_id", "channel"):
            if form[key]:
                params[key] = form[key]
        if not self.include_subunits:
            params["include_subunits"] = "no"
        return urlencode(params)

    @property
    def label(self) -> str:
        """The period in words: "本月（2025-02-01 至 2025-02-28）"."""
        return f"{PERIOD_LABELS_ZH[self.preset]}（{self.period.first} 至 {self.period.last}）"


def preset_period(preset: str, today: date) -> Period:
    """The days of a preset, China time: today, the first of this month to today, or the whole last month."""
    if preset == "today":
        return Period(today, today)
    if preset == "this_month":
        return Period(today.replace(day=1), today)
    last_day = today.replace(day=1) - timedelta(days=1)
    return Period(last_day.replace(day=1), last_day)


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(field, f"{field}须为日期，格式 YYYY-MM-DD（收到“{value}”）") from None


@dataclass(frozen=True)
class FilterForm:
    """The filter form's fields as typed: shown back as they were when one of them cannot be used."""

    period: str = ""
    first: str = ""
    last: str = ""
    region: str = ""
    unit_id: str = ""
    include_subunits: str = ""
    channel: str = ""

    def values(self) -> dict[str, str]:
        return {
            "period": self.period,
            "from": self.first,
            "to": self.last,
            "region": self.region,
            "unit_id": self.unit_id,
            "include_subunits": self.include_subunits or "yes",
            "channel": self.channel,
        }


_Text = Annotated[str, Query(max_length=40)]


def filter_form(
    period: _Text = "",
    first: Annotated[str, Query(alias="from", max_length=40)] = "",
    last: Annotated[str, Query(alias="to", max_length=40)] = "",
    region: _Text = "",
    unit_id: _Text = "",
    include_subunits: _Text = "",
    channel: _Text = "",
) -> FilterForm:
    """The filter's query parameters, as text: checked by read_filter, so a bad one gets a Chinese message."""
    return FilterForm(period, first, last, region, unit_id, include_subunits, channel)


FilterFormDep = Annotated[FilterForm, Depends(filter_form)]


def read_filter(form: FilterForm, today: date | None = None) -> DashboardFilter:
    """The filter from the form's text fields; FilterError names the field and says what is wrong in Chinese."""
    today = today or china_today()
    first, last = form.first.strip(), form.last.strip()
    preset = form.period.strip() or ("range" if first or last else "this_month")
    if preset not in PERIOD_LABELS_ZH:
        choices = "、".join(PERIOD_LABELS_ZH.values())
        raise FilterError("时间", f"时间只能选择：{choices}（收到“{form.period}”）")
    if preset == "range":
        if not first or not last:
            raise FilterError("时间", "自定义时间段须同时填写开始日期和结束日期")
        chosen = Period(_date(first, "开始日期"), _date(last, "结束日期"))
        if chosen.last < chosen.first:
            raise FilterError("结束日期", f"结束日期（{chosen.last}）不能早于开始日期（{chosen.first}）")
        if chosen.days > MAX_RANGE_DAYS:
            raise FilterError("时间", f"自定义时间段最长 {MAX_RANGE_DAYS} 天（收到 {chosen.days} 天）")
    else:
        chosen = preset_period(preset, today)
    unit = form.unit_id.strip()
    if unit and not (unit.isascii() and unit.isdigit() and 1 <= int(unit) <= 2_147_483_647):
        raise FilterError("单位", f"单位须从列表中选择（收到“{form.unit_id}”）")
    if form.include_subunits not in ("", "yes", "no"):
        raise FilterError("含下级单位", f"含下级单位只能选择“是”或“否”（收到“{form.include_subunits}”）")
    channel = form.channel.strip()
    if channel and channel not in {c.value for c in RatingChannel}:
        choices = "、".join(CHANNEL_LABELS_ZH.values())
        raise FilterError("评价渠道", f"评价渠道只能选择：{choices}（收到“{form.channel}”）")
    return DashboardFilter(
        preset=preset,
        period=chosen,
        region=form.region.strip(),
        unit_id=int(unit) if unit else None,
        include_subunits=form.include_subunits != "no",
        channel=channel,
    )
