"""The working-day calendar (工作日历) an admin loads or corrects per year.

A loaded year overrides the `chinese_calendar` package for that year: its holidays are days off,
its 调休 workdays are working weekends, every other day follows Monday–Friday. A year neither
loaded here nor known to the package counts weekends only and makes deadlines provisional.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field, model_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import UTCDateTime, utcnow
from models.deadlines import ChineseStatutoryCalendar
from models.request_body import RequestBody


class CalendarYear(SQLModel, table=True):
    year: int = SQLField(primary_key=True)
    holidays: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    workdays: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = SQLField(max_length=500)
    loaded_by: int | None = SQLField(default=None, foreign_key="user.id")
    loaded_at: datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)


class CalendarYearBody(RequestBody):
    """Body of PUT /api/v1/calendar/{year}: the State Council's notice for the year."""

    holidays: list[date] = Field(
        max_length=366, description="Weekdays off (法定节假日 falling on working days, and bridged days)"
    )
    workdays: list[date] = Field(max_length=366, description="Weekend days that are working days (调休上班)")
    source: str = Field(min_length=1, max_length=500, description="e.g. 国务院办公厅关于2027年部分节假日安排的通知")

    def check_year(self, year: int) -> None:
        """Every date must fall in the year being loaded, and no date may be both."""
        wrong = [d.isoformat() for d in [*self.holidays, *self.workdays] if d.year != year]
        if wrong:
            raise ValueError(f"dates outside {year}: {', '.join(wrong)}")
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"dates listed as both holiday and workday: {', '.join(d.isoformat() for d in both)}")

    @model_validator(mode="after")
    def _workdays_are_weekends(self) -> CalendarYearBody:
        weekdays = [d.isoformat() for d in self.workdays if d.weekday() < 5]
        if weekdays:
            raise ValueError(f"调休 workdays must be Saturdays or Sundays: {', '.join(weekdays)}")
        return self


class LoadedCalendar:
    """A WorkdayCalendar: loaded years first, then the package's official table, then weekends only."""

    def __init__(self, years: dict[int, tuple[set[date], set[date]]]) -> None:
        self._years = years
        self._package = ChineseStatutoryCalendar()

    def is_workday(self, day: date) -> tuple[bool, bool]:
        if day.year in self._years:
            holidays, workdays = self._years[day.year]
            if day in holidays:
                return False, True
            if day in workdays:
                return True, True
            return day.weekday() < 5, True
        return self._package.is_workday(day)


async def load_calendar(session: AsyncSession) -> LoadedCalendar:
    rows = (await session.exec(select(CalendarYear))).all()
    return LoadedCalendar(
        {
            row.year: ({date.fromisoformat(d) for d in row.holidays}, {date.fromisoformat(d) for d in row.workdays})
            for row in rows
        }
    )
