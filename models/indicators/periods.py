"""Periods in China time: the days a report covers, their bounds, and a timestamp's China day or month in SQL.

China has kept UTC+8 without daylight saving since 1991, so a China day is [00:00, 24:00) at +08:00
on both databases: PostgreSQL converts with timezone('Asia/Shanghai', …), SQLite adds eight hours.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from models.db import utcnow
from models.deadlines import CHINA_TZ
from models.table9_export import day_range


@dataclass(frozen=True)
class Period:
    """From the first to the last day, both included, China time."""

    first: date
    last: date

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as aware datetimes: a timestamp t is in the period when start <= t < end."""
        return day_range(self.first, self.last)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def clip(self, first: date, last: date) -> Period:
        """The part of [first, last] inside this period (a month row's days)."""
        return Period(max(first, self.first), min(last, self.last))


def china_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(CHINA_TZ).date()


def month_to_date(now: datetime | None = None) -> Period:
    """The default period: the first of this month to today, China time."""
    today = china_today(now)
    return Period(today.replace(day=1), today)


def month_days(key: str) -> tuple[date, date]:
    """The first and last day of a month key "YYYY-MM"."""
    year, month = (int(part) for part in key.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


class china_day(FunctionElement[str]):  # noqa: N801 - a SQL function, named like one
    """A timestamp's China date as "YYYY-MM-DD"."""

    type = String()
    inherit_cache = True


class china_date(FunctionElement[date]):  # noqa: N801 - a SQL function, named like one
    """A timestamp's China date as a date: the rollup's day (PostgreSQL only, as the rollup is)."""

    type = Date()
    inherit_cache = True


class china_month(FunctionElement[str]):  # noqa: N801 - a SQL function, named like one
    """A timestamp's China month as "YYYY-MM"."""

    type = String()
    inherit_cache = True


@compiles(china_day, "postgresql")
def _day_pg(element: china_day, compiler: Any, **kw: Any) -> str:
    return f"to_char(timezone('Asia/Shanghai', {compiler.process(element.clauses, **kw)}), 'YYYY-MM-DD')"


@compiles(china_month, "postgresql")
def _month_pg(element: china_month, compiler: Any, **kw: Any) -> str:
    return f"to_char(timezone('Asia/Shanghai', {compiler.process(element.clauses, **kw)}), 'YYYY-MM')"


@compiles(china_date, "postgresql")
def _date_pg(element: china_date, compiler: Any, **kw: Any) -> str:
    return f"(timezone('Asia/Shanghai', {compiler.process(element.clauses, **kw)}))::date"


# SQLite keeps UTCDateTime as naive UTC text ("2026-11-30 16:00:00.000000"), which strftime reads.
@compiles(china_day, "sqlite")
def _day_sqlite(element: china_day, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d', {compiler.process(element.clauses, **kw)}, '+8 hours')"


@compiles(china_month, "sqlite")
def _month_sqlite(element: china_month, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)}, '+8 hours')"
