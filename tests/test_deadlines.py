"""Deadline rules on the official calendar: holidays, 调休 working weekends, years with no table."""

from __future__ import annotations

from datetime import datetime

import pytest

from models.deadlines import CHINA_TZ, DeadlineSpec, compute_due


def cst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHINA_TZ)


@pytest.mark.parametrize(
    ("start", "spec", "due", "provisional"),
    [
        # Monday → end of Tuesday.
        (cst(2026, 11, 23, 10, 0), "1wd", cst(2026, 11, 25), False),
        # Saturday → end of Monday.
        (cst(2026, 11, 21, 10, 0), "1wd", cst(2026, 11, 24), False),
        # Eve of National Day: 1–7 October 2026 are holidays, so the next working day is Thursday 8 October.
        (cst(2026, 9, 30, 10, 0), "1wd", cst(2026, 10, 9), False),
        # Saturday 10 October 2026 is a 调休 working day and counts.
        (cst(2026, 10, 9, 15, 0), "1wd", cst(2026, 10, 11), False),
        (cst(2026, 10, 9, 15, 0), "3wd", cst(2026, 10, 14), False),
        # Sunday 20 September 2026 is a 调休 working day; Friday 25 September is Mid-Autumn.
        (cst(2026, 9, 19, 9, 0), "1wd", cst(2026, 9, 21), False),
        (cst(2026, 9, 24, 9, 0), "1wd", cst(2026, 9, 29), False),
        # 2027 has no official table in chinese-calendar 1.11: weekends only, marked provisional.
        (cst(2026, 12, 30, 9, 0), "2wd", cst(2027, 1, 2), True),
        # Natural time.
        (cst(2026, 10, 1, 23, 0), "4h", cst(2026, 10, 2, 3, 0), False),
        (cst(2026, 10, 1, 23, 0), "10m", cst(2026, 10, 1, 23, 10), False),
        # Natural days ignore holidays (Zhejiang's "15 days" ledger limit).
        (cst(2026, 9, 30, 10, 0), "15d", cst(2026, 10, 15, 10, 0), False),
    ],
)
def test_compute_due(start: datetime, spec: str, due: datetime, provisional: bool) -> None:
    result = compute_due(start, DeadlineSpec.parse(spec))
    assert result.at == due
    offset = result.at.utcoffset()
    assert result.at.tzinfo is not None and offset is not None and offset.total_seconds() == 0
    assert result.provisional is provisional


def test_spec_round_trips_in_short_form() -> None:
    spec = DeadlineSpec.parse("15wd")
    assert spec.amount == 15 and spec.unit == "working_days"
    dumped: object = spec.model_dump()  # the serializer makes it a string, not the dict model_dump's type says
    assert dumped == "15wd"
    assert DeadlineSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize("text", ["", "1", "1x", "wd", "-1wd", "0h", "1.5h"])
def test_bad_spec_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"wd|greater than or equal"):
        DeadlineSpec.parse(text)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_due(datetime(2026, 1, 5, 9, 0), DeadlineSpec.parse("1wd"))
