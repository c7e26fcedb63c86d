"""Deadlines (时限): how a rule like "1 working day" becomes a timestamp.

Pure functions, no I/O: the deadline activity calls them and hands the workflow a timestamp, and
the case page calls explain_due to show, day by day, how that timestamp came about.

A working-day deadline ends at midnight (Asia/Shanghai) after the Nth working day that follows the
day the clock starts. So a case opened on a Friday with a 1-working-day callback deadline is due by
the end of Monday, and one opened on the Saturday of a holiday is due by the end of the first
working day after the holiday. Hour and minute deadlines are natural time.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple, Protocol
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
    so the deadline is marked provisional instead of failing (docs/decisions/0002-working-day-deadlines-end-at-midnight.md).
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


class _JudgedDay(NamedTuple):
    day: date
    workday: bool
    known: bool


def _walk_working_days(start: datetime, amount: int, calendar: WorkdayCalendar) -> list[_JudgedDay]:
    """Every day from the day after start (Asia/Shanghai) to the amount-th working day, as the calendar judged it.

    compute_due and explain_due both read this one walk, so an explanation can never disagree
    with the deadline the workflow was given.
    """
    day = start.astimezone(CHINA_TZ).date()
    remaining = amount
    walked: list[_JudgedDay] = []
    while remaining:
        day += timedelta(days=1)
        workday, known = calendar.is_workday(day)
        walked.append(_JudgedDay(day, workday, known))
        if workday:
            remaining -= 1
    return walked


def _due_of(walked: list[_JudgedDay]) -> DueDate:
    """24:00 of the last working day counted; provisional if any day walked had no official table."""
    end_of_day = datetime.combine(walked[-1].day + timedelta(days=1), time.min, tzinfo=CHINA_TZ)
    return DueDate(at=end_of_day.astimezone(UTC), provisional=any(not judged.known for judged in walked))


def compute_due(start: datetime, spec: DeadlineSpec, calendar: WorkdayCalendar | None = None) -> DueDate:
    """The moment a deadline of ``spec`` that starts at ``start`` (timezone-aware) falls due."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if spec.unit != "working_days":
        # In UTC: adding to a wall clock with daylight saving time (a start written in such a zone) would be off
        # by the hour it skips or repeats.
        return DueDate(at=start.astimezone(UTC) + spec.as_timedelta())
    return _due_of(_walk_working_days(start, spec.amount, calendar or ChineseStatutoryCalendar()))


_RULE_UNITS_ZH = {"working_days": "个工作日", "days": "天", "hours": "小时", "minutes": "分钟"}


def rule_text_zh(spec: DeadlineSpec) -> str:
    """How staff read a rule: "5 个工作日", "15 天", "24 小时", "10 分钟"."""
    return f"{spec.amount} {_RULE_UNITS_ZH[spec.unit]}"


def clock_text_zh(at: datetime) -> str:
    """A moment as staff read it in Beijing time; midnight is the end of the day before ("… 24:00")."""
    local = at.astimezone(CHINA_TZ)
    if local.time() == time.min:
        return f"{(local.date() - timedelta(days=1)).isoformat()} 24:00"
    return local.strftime("%Y-%m-%d %H:%M")


class DueExplanation(BaseModel):
    """How a deadline's due time was arrived at (时限说明), for the case page.

    basis: working_days and natural_time are a walk of the rule; extended (督办延期) and set_by_unit
    (台账: the unit's own date within the policy limit) mean the due time is no longer the rule's
    result; calendar_changed means the calendar was corrected after the clock started, so today's
    walk (the day lists) differs from the recorded due time, which stands.
    For working-day rules, counted holds the N working days counted (including 调休 weekends and,
    for a year with no official table, the weekdays judged by weekends only).
    """

    basis: Literal["working_days", "natural_time", "extended", "set_by_unit", "calendar_changed"]
    start: date = Field(description="the day the clock started (Asia/Shanghai); counting begins the day after")
    rule: str = Field(description='the rule in words, e.g. "5 个工作日"')
    spec: DeadlineSpec
    due: datetime = Field(description="the due time, Asia/Shanghai")
    provisional: bool = False
    counted: list[date] = Field(default_factory=list, description="working days counted")
    weekends_skipped: list[date] = Field(default_factory=list)
    holidays_skipped: list[date] = Field(default_factory=list, description="weekdays off (法定节假日 and bridged days)")
    workdays_on_weekend: list[date] = Field(default_factory=list, description="调休 Saturdays and Sundays that counted")
    unknown_year_days: list[date] = Field(
        default_factory=list, description="days in a year with no official table, judged by weekends only"
    )
    summary: str


def explain_due(start: datetime, spec: DeadlineSpec, calendar: WorkdayCalendar | None = None) -> DueExplanation:
    """Why a deadline of ``spec`` starting at ``start`` falls due when compute_due says, day by day."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    local_start = start.astimezone(CHINA_TZ)
    rule = rule_text_zh(spec)
    if spec.unit != "working_days":
        due = compute_due(start, spec)
        return DueExplanation(
            basis="natural_time",
            start=local_start.date(),
            rule=rule,
            spec=spec,
            due=due.at.astimezone(CHINA_TZ),
            summary=(
                f"自 {local_start.strftime('%Y-%m-%d %H:%M')} 起 {rule}（自然时间，不扣除周末和节假日），"
                f"至 {clock_text_zh(due.at)} 截止"
            ),
        )

    walked = _walk_working_days(start, spec.amount, calendar or ChineseStatutoryCalendar())
    due = _due_of(walked)
    counted = [j.day for j in walked if j.workday]
    weekends = [j.day for j in walked if not j.workday and j.day.weekday() >= 5]
    holidays = [j.day for j in walked if not j.workday and j.day.weekday() < 5]
    weekend_workdays = [j.day for j in walked if j.workday and j.day.weekday() >= 5]
    unknown = [j.day for j in walked if not j.known]
    clauses = []
    skipped = [f"{what} {len(days)} 天" for what, days in (("周末", weekends), ("法定节假日", holidays)) if days]
    if skipped:
        clauses.append("跳过" + "、".join(skipped))
    if weekend_workdays:
        clauses.append(f"计入调休工作日 {len(weekend_workdays)} 天")
    if unknown:
        years = "、".join(f"{year} 年" for year in sorted({day.year for day in unknown}))
        clauses.append(f"{years}尚无官方节假日安排，其中 {len(unknown)} 天仅按周末判断")
    clauses.append(f"{'暂定' if due.provisional else ''}至 {clock_text_zh(due.at)} 截止")
    return DueExplanation(
        basis="working_days",
        start=local_start.date(),
        rule=rule,
        spec=spec,
        due=due.at.astimezone(CHINA_TZ),
        provisional=due.provisional,
        counted=counted,
        weekends_skipped=weekends,
        holidays_skipped=holidays,
        workdays_on_weekend=weekend_workdays,
        unknown_year_days=unknown,
        summary=f"自 {local_start.date().isoformat()} 起 {rule}：" + "，".join(clauses),
    )


def explain_set_due(
    start: datetime, spec: DeadlineSpec, due: datetime, basis: Literal["extended", "set_by_unit"]
) -> DueExplanation:
    """The explanation of a due time a person set rather than the rule: there is no walk to show."""
    local_start = start.astimezone(CHINA_TZ)
    rule = rule_text_zh(spec)
    if basis == "extended":
        summary = f"由督办延期至 {clock_text_zh(due)}（原时限：自 {local_start.date().isoformat()} 起 {rule}）"
    else:
        summary = f"由承办单位在政策上限（{rule}）内设定，至 {clock_text_zh(due)} 截止"
    return DueExplanation(
        basis=basis, start=local_start.date(), rule=rule, spec=spec, due=due.astimezone(CHINA_TZ), summary=summary
    )


def explain_recorded(
    start: datetime, spec: DeadlineSpec, recorded_due: datetime, calendar: WorkdayCalendar | None = None
) -> DueExplanation:
    """Explain a due time the workflow recorded from the rule, against today's calendar.

    The workflow computed the due time when the clock started; an admin may have corrected the
    calendar since (a finished clock is never recomputed). Then the recorded time still stands, and
    the explanation says both instead of showing a walk that ends elsewhere.
    """
    walk = explain_due(start, spec, calendar)
    if walk.due == recorded_due:
        return walk
    return walk.model_copy(
        update={
            "basis": "calendar_changed",
            "due": recorded_due.astimezone(CHINA_TZ),
            "summary": (
                f"自 {walk.start.isoformat()} 起 {walk.rule}：按现行工作日历应至 {clock_text_zh(walk.due)} 截止；"
                f"计时后工作日历有调整，以计时时确定的 {clock_text_zh(recorded_due)} 为准"
            ),
        }
    )
