"""Property tests (hypothesis): working-day arithmetic, the source systems' code maps, the case clock.

Each property is checked on generated inputs against an independent statement of the rule (days are
counted here one by one on the same calendar, not by the code's own walk). The budget is fixed and
reproducible (docs/testing.md, "Fuzzing and properties"): HCP_FUZZ_SCALE multiplies the examples,
HCP_FUZZ_SEED replaces the fixed derivation by a seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import HealthCheck, assume, example, given, seed, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.calendar import LoadedCalendar
from models.codes import SourceCodes, code_book
from models.deadlines import CHINA_TZ, ChineseStatutoryCalendar, DeadlineSpec, WorkdayCalendar, compute_due
from models.office_hours import OfficeHours, next_office_time
from models.policy import DeadlineName, DeadlineRule, EscalationRung, PolicyProfile, TagCatalogue
from models.policy_store import load_profile_files
from models.rating_codes import CodeRefused, read_rating
from models.ratings import RatingCreate
from workflows.case.clock import Clock

SCALE = int(os.environ.get("HCP_FUZZ_SCALE", "1"))
SEED = os.environ.get("HCP_FUZZ_SEED")
F = TypeVar("F", bound=Callable[..., Any])


def reproducible(test: F) -> F:
    """A fixed budget, derandomized (the same examples on every run) unless HCP_FUZZ_SEED names a seed."""
    bounded = settings(
        max_examples=100 * SCALE,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,
    )(test)
    return seed(int(SEED))(bounded) if SEED else bounded


# --- Working days -------------------------------------------------------------------------------------------

# An instant may be written in any zone; the due must depend on the instant only (New York and London have
# daylight saving time, China has none).
ZONES = [UTC, CHINA_TZ, ZoneInfo("America/New_York"), ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata")]
FIRST_YEAR, LAST_YEAR = 2004, 2030  # the package's first official year, and past its last (provisional years)
PACKAGE = ChineseStatutoryCalendar()
MAKE_UP_DAYS = sorted(d for d in chinese_calendar.workdays if d.weekday() >= 5)  # 调休上班 weekends
HOLIDAYS = sorted(d for d in chinese_calendar.holidays if d.weekday() < 5)
YEAR_ENDS = [date(year, 12, 31) for year in range(FIRST_YEAR, LAST_YEAR)]


def _around(days: list[date]) -> st.SearchStrategy[datetime]:
    """A moment within ten days of one of `days`, China time."""
    return st.builds(
        lambda day, offset, minute: (
            datetime.combine(day + timedelta(days=offset), time.min, CHINA_TZ) + timedelta(minutes=minute)
        ),
        st.sampled_from(days),
        st.integers(-10, 10),
        st.integers(0, 24 * 60 - 1),
    )


instants = st.datetimes(
    min_value=datetime(FIRST_YEAR, 1, 2),
    max_value=datetime(LAST_YEAR, 12, 1),
    timezones=st.sampled_from(ZONES),
    allow_imaginary=False,
)
starts = st.one_of(instants, _around(YEAR_ENDS), _around(MAKE_UP_DAYS), _around(HOLIDAYS))


@st.composite
def loaded_calendars(draw: st.DrawFn) -> LoadedCalendar:
    """An admin's calendar: some years loaded with their own holidays (weekdays) and 调休 workdays (weekends)."""
    tables: dict[int, tuple[set[date], set[date]]] = {}
    for year in draw(st.sets(st.integers(2024, 2029), max_size=3)):
        days = [date(year, 1, 1) + timedelta(days=n) for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]
        holidays = draw(st.sets(st.sampled_from([d for d in days if d.weekday() < 5]), max_size=40))
        workdays = draw(st.sets(st.sampled_from([d for d in days if d.weekday() >= 5]), max_size=12))
        tables[year] = (holidays, workdays)
    return LoadedCalendar(tables)


calendars: st.SearchStrategy[WorkdayCalendar] = st.one_of(st.just(PACKAGE), loaded_calendars())


def working_days(n: int) -> DeadlineSpec:
    return DeadlineSpec(amount=n, unit="working_days")


natural_specs = st.builds(DeadlineSpec, amount=st.integers(1, 366), unit=st.sampled_from(["days", "hours", "minutes"]))
any_specs = st.one_of(st.integers(1, 366).map(working_days), natural_specs)


def china_day(moment: datetime) -> date:
    return moment.astimezone(CHINA_TZ).date()


def days_from(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@reproducible
@given(start=starts, n=st.integers(1, 366), calendar=calendars)
def test_a_working_day_due_is_the_midnight_after_the_nth_working_day(
    start: datetime, n: int, calendar: WorkdayCalendar
) -> None:
    due = compute_due(start, working_days(n), calendar)
    local = due.at.astimezone(CHINA_TZ)
    assert due.at > start
    assert due.at.utcoffset() == timedelta(0)
    assert local.time() == time.min  # 24:00 of a day, China time
    # Counted here one by one: from the day after the start to the day the due ends, exactly n working days.
    walked = days_from(china_day(start) + timedelta(days=1), local.date() - timedelta(days=1))
    assert sum(calendar.is_workday(day)[0] for day in walked) == n
    # A due never ends a day off: the day it ends is a working day (so no earlier midnight has n).
    assert calendar.is_workday(local.date() - timedelta(days=1))[0]
    # Provisional exactly when a day walked is in a year with no official table.
    assert due.provisional == (not all(calendar.is_workday(day)[1] for day in walked))


@reproducible
@given(start=starts, n=st.integers(1, 182), m=st.integers(1, 182), calendar=calendars)
def test_n_then_m_working_days_is_n_plus_m(start: datetime, n: int, m: int, calendar: WorkdayCalendar) -> None:
    """Adding n then m working days equals adding n + m, when the second count starts on the n-th working day.

    A clock never counts the day it starts on. So counting m on from any moment of the n-th working day (up
    to a microsecond before the first due) gives the n + m due; a clock started at the first due itself, which
    is 00:00 of the next day, does not count that day: one working day more if that day is a working day.
    """
    first = compute_due(start, working_days(n), calendar).at
    both = compute_due(start, working_days(n + m), calendar).at
    assert compute_due(first - timedelta(microseconds=1), working_days(m), calendar).at == both
    next_day_works = calendar.is_workday(china_day(first))[0]
    restarted = compute_due(first, working_days(m), calendar).at
    assert restarted == (compute_due(start, working_days(n + m + 1), calendar).at if next_day_works else both)


@reproducible
@given(start=instants, spec=natural_specs, more=st.integers(1, 366))
# Found by this test: a week from a New York start across the end of daylight saving time was 7 days and an hour.
@example(start=datetime(2004, 10, 25, tzinfo=ZoneInfo("America/New_York")), spec=DeadlineSpec.parse("7d"), more=1)
def test_natural_time_is_elapsed_time_and_adds_up(start: datetime, spec: DeadlineSpec, more: int) -> None:
    due = compute_due(start, spec).at
    assert due - start == spec.as_timedelta()  # real time elapsed, whatever zone the start is written in
    longer = DeadlineSpec(amount=spec.amount + more, unit=spec.unit) if spec.amount + more <= 366 else None
    if longer is not None:
        extra = DeadlineSpec(amount=more, unit=spec.unit)
        assert compute_due(due, extra).at == compute_due(start, longer).at


@reproducible
@given(start=starts, spec=any_specs, calendar=calendars)
def test_the_due_depends_on_the_instant_not_on_its_zone(
    start: datetime, spec: DeadlineSpec, calendar: WorkdayCalendar
) -> None:
    assert len({compute_due(start.astimezone(zone), spec, calendar).at for zone in ZONES}) == 1


@st.composite
def office_hours(draw: st.DrawFn) -> OfficeHours:
    opens = draw(st.integers(0, 24 * 60 - 2))
    closes = draw(st.integers(opens + 1, 24 * 60 - 1))
    return OfficeHours(opens=time(*divmod(opens, 60)), closes=time(*divmod(closes, 60)))


@reproducible
@given(moment=starts, hours=office_hours(), calendar=calendars)
# Found by this test: after closing on a Friday, an office that opens at 00:00 "held" a notice until the moment itself.
@example(
    moment=datetime(2004, 1, 2, 8, tzinfo=CHINA_TZ),
    hours=OfficeHours(opens=time(0), closes=time(0, 1)),
    calendar=PACKAGE,
)
def test_office_hours_move_a_moment_to_the_next_open_one_and_no_further(
    moment: datetime, hours: OfficeHours, calendar: WorkdayCalendar
) -> None:
    shifted = next_office_time(moment, hours, calendar)
    local, then = shifted.astimezone(CHINA_TZ), moment.astimezone(CHINA_TZ)
    assert shifted >= moment
    assert next_office_time(shifted, hours, calendar) == shifted  # idempotent
    assert calendar.is_workday(local.date())[0] and hours.opens <= local.time() < hours.closes
    if shifted == moment:
        return
    # Held: to the opening of a working day, and no working day between was still open at or after `moment`.
    assert local.time() == hours.opens
    for day in days_from(then.date(), local.date()):
        opens = datetime.combine(day, hours.opens, CHINA_TZ)
        closes = datetime.combine(day, hours.closes, CHINA_TZ)
        if day < local.date() and calendar.is_workday(day)[0]:
            assert moment >= closes, (day, moment)
        if day == local.date():
            assert moment < opens


# --- Code maps ----------------------------------------------------------------------------------------------

SOURCES = sorted(code_book().sources.values(), key=lambda source: source.source_system)
NO_TAGS = TagCatalogue()


@pytest.mark.parametrize("source", SOURCES, ids=lambda source: source.source_system)
def test_every_code_of_every_source_round_trips(source: SourceCodes) -> None:
    """Exhaustively (the tables are small): code → level → code, level → code → level, and the same for channels."""
    satisfaction, channels = source.satisfaction, source.channels
    for entry in satisfaction.codes:
        level = satisfaction.level_of(entry.code)
        assert level == entry.level and satisfaction.code_of(level) == entry.code
    assert {satisfaction.level_of(satisfaction.code_of(e.level)) for e in satisfaction.codes} == {
        e.level for e in satisfaction.codes
    }
    for channel_entry in channels.codes:
        channel = channels.channel_of(channel_entry.code)
        assert channel == channel_entry.channel and channels.code_of(channel) == channel_entry.code


codes_as_sent = st.one_of(
    st.from_regex(r"[0-9A-Za-z]{1,8}", fullmatch=True),  # what the API's Code type lets through
    st.integers(-10, 10**8),  # some systems send numbers
    st.text(min_size=1, max_size=9),  # anything else: full-width digits, spaces, signs
)


@reproducible
@given(source=st.sampled_from(SOURCES), data=st.data())
def test_a_rating_in_a_sources_codes_reads_back_to_the_same_codes(source: SourceCodes, data: st.DataObject) -> None:
    satisfaction = data.draw(st.sampled_from(source.satisfaction.codes))
    channel = data.draw(st.sampled_from(source.channels.codes))
    as_number = data.draw(st.booleans()) and satisfaction.code.isdigit() and not satisfaction.code.startswith("0")
    sent: Any = int(satisfaction.code) if as_number else satisfaction.code
    body = RatingCreate.model_validate({"record_no": "P-1", "satisfaction_code": sent, "channel_code": channel.code})
    read = read_rating(body, source.source_system, NO_TAGS)
    assert source.satisfaction.code_of(read.level) == satisfaction.code
    assert source.channels.code_of(read.channel) == channel.code


@reproducible
@given(
    source=st.sampled_from(SOURCES), field=st.sampled_from(["satisfaction_code", "channel_code"]), code=codes_as_sent
)
def test_a_code_not_in_the_sources_table_is_refused_naming_it(source: SourceCodes, field: str, code: Any) -> None:
    known = {c.code for c in (source.satisfaction.codes if field == "satisfaction_code" else source.channels.codes)}
    assume(str(code) not in known)
    other = "channel_code" if field == "satisfaction_code" else "satisfaction_code"
    other_code = (source.channels.codes if other == "channel_code" else source.satisfaction.codes)[0].code
    try:
        body = RatingCreate.model_validate({"record_no": "P-1", field: code, other: other_code})
    except ValidationError as exc:  # not even a code's form: the API answers 422 naming the field
        assert [e["loc"] for e in exc.errors()] == [(field,)]
        return
    with pytest.raises(CodeRefused) as refused:
        read_rating(body, source.source_system, NO_TAGS)
    assert (refused.value.code, refused.value.field, refused.value.value) == ("unknown_code", field, str(code))
    assert refused.value.source == source.source_system


# --- The case clock -----------------------------------------------------------------------------------------

NATIONAL = load_profile_files()["national"]
reminders = st.lists(
    st.builds(DeadlineSpec, amount=st.integers(1, 72), unit=st.sampled_from(["minutes", "hours", "days"])),
    max_size=4,
    unique_by=lambda spec: spec.as_timedelta(),
)
delays = st.one_of(
    st.none(), st.builds(DeadlineSpec, amount=st.integers(1, 72), unit=st.sampled_from(["minutes", "hours", "days"]))
)


def _length(delay: DeadlineSpec | None) -> timedelta:
    return delay.as_timedelta() if delay else timedelta(0)


@st.composite
def ladders(draw: st.DrawFn) -> list[EscalationRung]:
    """A ladder the policy accepts: rungs 1, 2, … whose delays after the due never go down."""
    chosen = sorted(draw(st.lists(delays, min_size=1, max_size=5)), key=_length)
    notify = draw(
        st.lists(st.sampled_from(["supervisor", "management_office"]), min_size=len(chosen), max_size=len(chosen))
    )
    return [
        EscalationRung(rung=n, notify=who, after_overdue=delay, source="property")
        for n, (delay, who) in enumerate(zip(chosen, notify, strict=True), start=1)
    ]


def fire(clock: Clock, now: datetime) -> list[tuple[datetime, str, str]]:
    """Every event the clock fires from `now` on, as the deadline board fires them: (when, kind, notice key)."""
    clock.skip_past_reminders(now)
    fired: list[tuple[datetime, str, str]] = []
    while (event := clock.next_event()) is not None:
        at, kind = event
        if kind == "reminder":
            clock.reminders_sent += 1
            what = f"remind{clock.reminders_sent}"
        else:
            clock.rung += 1
            clock.state = "overdue"
            what = f"rung{clock.rung}"
        fired.append((at, kind, f"a{clock.arm}.{what}"))
    return fired


def assert_in_order(fired: list[tuple[datetime, str, str]], start: datetime, due: datetime, ladder_length: int) -> None:
    times = [at for at, _, _ in fired]
    kinds = [kind for _, kind, _ in fired]
    assert times == sorted(times), fired  # in time order
    assert kinds == sorted(kinds, key=lambda kind: kind == "escalation"), fired  # every reminder before any rung
    assert all(start < at < due for at, kind, _ in fired if kind == "reminder"), fired
    assert all(at >= due for at, kind, _ in fired if kind == "escalation"), fired
    assert kinds.count("escalation") == ladder_length  # each rung once
    reminder_times = [at for at, kind, _ in fired if kind == "reminder"]
    assert len(set(reminder_times)) == len(reminder_times), fired  # no two reminders at one moment


@reproducible
@given(
    start=instants,
    within=st.integers(1, 14 * 24 * 60),
    remind=reminders,
    ladder=ladders(),
    extend_after=st.integers(0, 30 * 24 * 60),
    extend_by=st.integers(1, 30 * 24 * 60),
)
def test_a_clock_reminds_before_due_escalates_after_in_order_and_never_twice(
    start: datetime, within: int, remind: list[DeadlineSpec], ladder: list[EscalationRung], extend_after: int,
    extend_by: int,
) -> None:  # fmt: skip
    rule = DeadlineRule(within=DeadlineSpec(amount=1, unit="days"), remind_before=remind, source="property")
    due = start + timedelta(minutes=within)
    clock = Clock(DeadlineName.VERIFICATION, 1, start, due, False, rule, ladder)
    fired = fire(clock, start)
    assert_in_order(fired, start, due, len(ladder))
    assert [kind for _, kind, _ in fired].count("reminder") == len(
        [r for r in remind if due - r.as_timedelta() > start]
    )
    # Extended (督办延期) at some moment: re-armed, the ladder again from rung 1, no reminder already past.
    now = start + timedelta(minutes=extend_after)
    new_due = now + timedelta(minutes=extend_by)
    clock.rearm(new_due, now)
    again = fire(clock, now)
    assert_in_order(again, now, new_due, len(ladder))
    keys = [key for _, _, key in fired + again]
    assert len(set(keys)) == len(keys)  # every notice key once across both arms


def test_the_policy_refuses_a_ladder_that_goes_back_in_time() -> None:
    """A later rung due before an earlier one would fire with it, silently: the profile says so instead."""
    profile = NATIONAL.model_dump(mode="json")
    profile["escalation"] = [
        {"rung": 1, "notify": "supervisor", "after_overdue": "2d", "source": "x"},
        {"rung": 2, "notify": "management_office", "after_overdue": "1h", "source": "x"},
    ]
    with pytest.raises(ValidationError, match="rung 2"):
        PolicyProfile.model_validate(profile)


def test_the_policy_refuses_two_reminders_at_one_moment() -> None:
    with pytest.raises(ValidationError, match="1d"):
        DeadlineRule(within=DeadlineSpec.parse("5wd"), remind_before=["1d", "24h"], source="x")
