"""Office hours (办公时间): when reminders and escalation notices may reach a unit.

A reminder or escalation that falls due at night, on a weekend or on a holiday is held until the
start of the next working period, so nobody is woken by it and it is not buried under the night's
mail. Working days come from the same calendar as deadlines (statutory holidays, 调休 workdays).
The rater's own messages are never held.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema, model_validator

from models.deadlines import CHINA_TZ, WorkdayCalendar


def _local(value: time) -> time:
    # A time with an offset cannot be compared with one without (a TypeError, not a refusal), and the hours
    # are Beijing time by definition.
    if value.tzinfo is not None:
        raise ValueError("office hours are Beijing time (Asia/Shanghai): give them without an offset, e.g. 08:30")
    return value


# Not JSON Schema's "time" format: that is RFC 3339's, which always carries an offset.
LocalTime = Annotated[
    time,
    AfterValidator(_local),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "description": "Beijing time without an offset, HH:MM or HH:MM:SS",
        }
    ),
]


class OfficeHours(BaseModel):
    """A profile's office hours (Asia/Shanghai) and the notice kinds they hold back."""

    opens: LocalTime = time(8, 30)
    closes: LocalTime = time(17, 30)
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
                # `moment` itself on its own day; on a later day, its midnight (an office that opens at 00:00).
                return local.astimezone(moment.tzinfo)
        day += timedelta(days=1)
        local = datetime.combine(day, time.min, tzinfo=CHINA_TZ)
    return moment
