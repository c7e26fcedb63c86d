"""Office hours (办公时间): when reminders and escalation notices may reach a unit.

A reminder or escalation that falls due at night, on a weekend or on a holiday is held until the
start of the next working period, so nobody is woken by it and it is not buried under the night's
mail. Working days come from the same calendar as deadlines (statutory holidays, 调休 workdays).
The rater's own messages are never held.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from pydantic import BaseModel, Field, model_validator

from models.deadlines import CHINA_TZ, WorkdayCalendar


class OfficeHours(BaseModel):
    """A profile's office hours (Asia/Shanghai) and the notice kinds they hold back."""

    opens: time = time(8, 30)
    closes: time = time(17, 30)
    applies_to: list[str] = Field(
        default_factory=lambda: ["reminder", "escalation"],
        description="Notice kinds held until office hours; empty: none is held",
    )
    source: str = Field(default="system default: 机关工作时间 08:30–17:30 on working days", min_length=1)

    @model_validator(mode="after")
    def _opens_before_closing(self) -> OfficeHours:
        if self.opens >= self.closes:
            raise ValueError("office hours must open before they close")
        return self

    def holds(self, kind: str) -> bool:
        return kind in self.applies_to


def next_office_time(moment: datetime, hours: OfficeHours, calendar: WorkdayCalendar) -> datetime:
    """`moment` itself if it falls within office hours on a working day, else the start of the next ones."""
    local = moment.astimezone(CHINA_TZ)
    day = local.date()
    for _ in range(400):  # a year and more: ends long before on any real calendar
        is_workday, _known = calendar.is_workday(day)
        if is_workday:
            opens = datetime.combine(day, hours.opens, tzinfo=CHINA_TZ)
            closes = datetime.combine(day, hours.closes, tzinfo=CHINA_TZ)
            if local < opens:
                return opens.astimezone(moment.tzinfo)
            if local < closes:
                return moment
        day += timedelta(days=1)
        local = datetime.combine(day, time.min, tzinfo=CHINA_TZ)
    return moment
