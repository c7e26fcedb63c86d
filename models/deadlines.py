"""Deadlines (时限): how a rule like "1 working day" becomes a timestamp.

Pure functions, no I/O: the deadline activity calls them and hands the workflow a timestamp.

A working-day deadline ends at midnight (Asia/Shanghai) after the Nth working day that follows the
day the clock starts. So a case opened on a Friday with a 1-working-day callback deadline is due by
the end of Monday, and one opened on the Saturday of a holiday is due by the end of the first
working day after the holiday. Hour and minute deadlines are natural time.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, model_serializer, model_validator

CHINA_TZ = ZoneInfo("Asia/Shanghai")

_SPEC_RE = re.compile(r"^\s*(\d+)\s*(wd|d|h|m)\s*$")
_UNIT_SUFFIX = {"working_days": "wd", "days": "d", "hours": "h", "minutes": "m"}
_SUFFIX_UNIT = {v: k for k, v in _UNIT_SUFFIX.items()}


class DeadlineSpec(BaseModel):
    """A deadline rule: an amount of working days, natural days, hours or minutes."""

    amount: int = Field(ge=1, le=366)
    unit: Literal["working_days", "days", "hours", "minutes"]

    @classmethod
    def parse(cls, text: str) -> DeadlineSpec:
        """Parse the short form used in settings and policy files: "1wd", "15d", "24h", "10m"."""
        return cls.model_validate(text)

    @model_validator(mode="before")
    @classmethod
    def _from_short_form(cls, value: object) -> object:
        # Serialized as "1wd" (see below), so it must read back from that form too.
        if isinstance(value, str):
            match = _SPEC_RE.match(value)
            if not match:
                raise ValueError(
                    f'deadline {value!r} is not of the form "<n>wd", "<n>d", "<n>h" or "<n>m" (e.g. "1wd")'
                )
            return {"amount": int(match.group(1)), "unit": _SUFFIX_UNIT[match.group(2)]}
        return value

    @model_serializer
    def _as_short_form(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{self.amount}{_UNIT_SUFFIX[self.unit]}"

    def as_timedelta(self) -> timedelta:
        """The length of a natural-time rule; working days have no fixed length."""
        if self.unit == "working_days":
            raise ValueError("a working-day rule has no fixed length; use compute_due")
        return timedelta(**{self.unit: self.amount})


class WorkdayCalendar(Protocol):
    """Answers whether a date is a working day, and whether that answer comes from an official table."""

    def is_workday(self, day: date) -> tuple[bool, bool]:
        """Return (is_workday, known). known is False when the year has no official table."""
        ...


class ChineseStatutoryCalendar:
    """The State Council calendar (statutory holidays and 调休 working weekends) from `chinese_calendar`.

    For a year the package has no table for, it counts weekends only and says the answer is not known,
    so the deadline is marked provisional instead of failing (see DOMAIN.md, "Deadlines are in working days").
    """

    def is_workday(self, day: date) -> tuple[bool, bool]:
        import chinese_calendar

        try:
            return chinese_calendar.is_workday(day), True
        except NotImplementedError:
            return day.weekday() < 5, False


class DueDate(BaseModel):
    """A computed deadline. provisional: it relied on a year with no official holiday table."""

    at: datetime
    provisional: bool = False


def compute_due(start: datetime, spec: DeadlineSpec, calendar: WorkdayCalendar | None = None) -> DueDate:
    """The moment a deadline of ``spec`` that starts at ``start`` (timezone-aware) falls due."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if spec.unit != "working_days":
        return DueDate(at=(start + spec.as_timedelta()).astimezone(UTC))

    calendar = calendar or ChineseStatutoryCalendar()
    day = start.astimezone(CHINA_TZ).date()
    remaining = spec.amount
    provisional = False
    while remaining:
        day += timedelta(days=1)
        workday, known = calendar.is_workday(day)
        provisional = provisional or not known
        if workday:
            remaining -= 1
    end_of_day = datetime.combine(day + timedelta(days=1), time.min, tzinfo=CHINA_TZ)
    return DueDate(at=end_of_day.astimezone(UTC), provisional=provisional)
