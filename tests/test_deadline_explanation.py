"""时限说明: how each deadline of a case was computed, day by day, and the same walk as compute_due."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from models.calendar import LoadedCalendar
from models.case.records import Case
from models.case.vocabulary import DeadlineView
from models.db import Database
from models.deadlines import CHINA_TZ, DeadlineSpec, compute_due, explain_due, explain_recorded
from models.policy import DeadlineName
from runtime.seed import DemoCredentials
from tests.support.case_driver import use_policy
from tests.support.http import bad_rating, login


def cst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHINA_TZ)


def days(*spec: tuple[int, int]) -> list[date]:
    return [date(2026, month, day) for month, day in spec]


def test_national_day_week_skips_weekends_and_holidays_and_counts_the_tiaoxiu_saturday() -> None:
    # 1–7 October 2026 are off (3–4 are the weekend); Saturday 10 October is a 调休 working day.
    explained = explain_due(cst(2026, 9, 30, 10, 0), DeadlineSpec.parse("5wd"))

    assert explained.basis == "working_days"
    assert explained.start == date(2026, 9, 30)
    assert explained.rule == "5 个工作日"
    assert explained.counted == days((10, 8), (10, 9), (10, 10), (10, 12), (10, 13))
    assert explained.holidays_skipped == days((10, 1), (10, 2), (10, 5), (10, 6), (10, 7))
    assert explained.weekends_skipped == days((10, 3), (10, 4), (10, 11))
    assert explained.workdays_on_weekend == days((10, 10))
    assert explained.unknown_year_days == [] and not explained.provisional
    assert explained.due == cst(2026, 10, 14)
    assert explained.summary == (
        "自 2026-09-30 起 5 个工作日：跳过周末 3 天、法定节假日 5 天，计入调休工作日 1 天，至 2026-10-13 24:00 截止"
    )


def test_a_tiaoxiu_sunday_counts_on_its_own() -> None:
    # Sunday 20 September 2026 is a working day: a case opened on the Saturday is due at its end.
    explained = explain_due(cst(2026, 9, 19, 9, 0), DeadlineSpec.parse("1wd"))
    assert explained.counted == explained.workdays_on_weekend == days((9, 20))
    assert explained.weekends_skipped == explained.holidays_skipped == []
    assert explained.summary == "自 2026-09-19 起 1 个工作日：计入调休工作日 1 天，至 2026-09-20 24:00 截止"


def test_a_year_with_no_official_table_is_counted_by_weekends_and_marked_provisional() -> None:
    # chinese-calendar 1.11 has no 2027 table: 1 January 2027 (a Friday) is judged a working day.
    explained = explain_due(cst(2026, 12, 30, 9, 0), DeadlineSpec.parse("3wd"))
    assert explained.provisional
    assert explained.counted == [date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 4)]
    assert explained.weekends_skipped == [date(2027, 1, 2), date(2027, 1, 3)]
    assert explained.unknown_year_days == [date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3), date(2027, 1, 4)]
    assert "2027 年尚无官方节假日安排，其中 4 天仅按周末判断" in explained.summary
    assert explained.summary.endswith("暂定至 2027-01-04 24:00 截止")


def test_a_loaded_year_replaces_the_guess() -> None:
    calendar = LoadedCalendar({2027: ({date(2027, 1, 1)}, set())})
    explained = explain_due(cst(2026, 12, 30, 9, 0), DeadlineSpec.parse("3wd"), calendar)
    assert not explained.provisional and explained.unknown_year_days == []
    assert explained.holidays_skipped == [date(2027, 1, 1)]
    assert explained.counted == [date(2026, 12, 31), date(2027, 1, 4), date(2027, 1, 5)]


@pytest.mark.parametrize(("spec", "rule", "due"), [("4h", "4 小时", cst(2026, 10, 2, 3, 0)), ("15d", "15 天", None)])
def test_natural_time_lists_no_days(spec: str, rule: str, due: datetime | None) -> None:
    explained = explain_due(cst(2026, 10, 1, 23, 0), DeadlineSpec.parse(spec))
    assert explained.basis == "natural_time" and explained.rule == rule and not explained.provisional
    assert explained.counted == explained.weekends_skipped == explained.holidays_skipped == []
    assert explained.workdays_on_weekend == explained.unknown_year_days == []
    assert "自然时间" in explained.summary
    if due is not None:
        assert explained.due == due
        assert (
            explained.summary
            == "自 2026-10-01 23:00 起 4 小时（自然时间，不扣除周末和节假日），至 2026-10-02 03:00 截止"
        )


def test_rule_words() -> None:
    texts = [explain_due(cst(2026, 11, 23), DeadlineSpec.parse(s)).rule for s in ("2wd", "15d", "24h", "10m")]
    assert texts == ["2 个工作日", "15 天", "24 小时", "10 分钟"]


@pytest.mark.parametrize("spec", ["1wd", "2wd", "5wd", "10wd", "1d", "24h"])
def test_explanation_always_agrees_with_compute_due(spec: str) -> None:
    # Every start hour across the 2026 Mid-Autumn and National Day holidays and into 2027.
    rule = DeadlineSpec.parse(spec)
    start = cst(2026, 9, 15, 0, 30)
    while start < cst(2027, 1, 10):
        due = compute_due(start, rule)
        explained = explain_due(start, rule)
        assert (explained.due, explained.provisional) == (due.at, due.provisional), start
        if rule.unit == "working_days":
            assert len(explained.counted) == rule.amount
        start += timedelta(hours=7)


def test_a_due_time_from_an_older_calendar_stands_and_says_so() -> None:
    start = cst(2026, 12, 30, 9, 0)
    recorded = compute_due(start, DeadlineSpec.parse("1wd")).at  # end of 31 December
    corrected = LoadedCalendar({2026: ({date(2026, 12, 31)}, set())})
    explained = explain_recorded(start, DeadlineSpec.parse("1wd"), recorded, corrected)
    assert explained.basis == "calendar_changed" and explained.due == recorded
    assert explained.holidays_skipped == [date(2026, 12, 31)]
    assert "以计时时确定的 2026-12-31 24:00 为准" in explained.summary
    assert explain_recorded(start, DeadlineSpec.parse("1wd"), recorded).basis == "working_days"


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        explain_due(datetime(2026, 1, 5, 9, 0), DeadlineSpec.parse("1wd"))


async def test_case_page_explains_each_deadline_under_the_pinned_profile(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await use_policy(db, "national")
    response = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]

    opened = cst(2026, 9, 30, 10, 0)
    # National profile: verification 2wd, callback 1wd, feedback 1wd, ledger at most 15d.
    deadlines = [
        DeadlineView(name=DeadlineName.VERIFICATION, started_at=opened, due_at=cst(2026, 10, 10)),
        DeadlineView(
            name=DeadlineName.CALLBACK, started_at=opened, due_at=cst(2026, 10, 20, 18, 0), extended=True, state="met"
        ),
        DeadlineView(name=DeadlineName.RECTIFICATION_LEDGER_MAX, started_at=opened, due_at=cst(2026, 10, 12, 17, 30)),
    ]
    async with db.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None and case.policy_code == "national"
        case.deadlines = [d.model_dump(mode="json") for d in deadlines]
        session.add(case)
        await session.commit()

    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    detail = (await offline_api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()
    assert detail["level"] == "very_dissatisfied" and detail["level_label"] == "很差"

    verification, callback, ledger = detail["deadlines"]
    # Every DeadlineView field is still there, so existing clients keep working.
    assert set(DeadlineView.model_fields) <= set(verification)
    assert datetime.fromisoformat(verification["due_at"]) == cst(2026, 10, 10).astimezone(UTC)
    assert verification["label"] == "核实"
    explained = verification["explanation"]
    assert explained["basis"] == "working_days" and explained["rule"] == "2 个工作日" and explained["spec"] == "2wd"
    assert explained["counted"] == ["2026-10-08", "2026-10-09"]
    assert explained["holidays_skipped"] == ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"]
    assert explained["weekends_skipped"] == ["2026-10-03", "2026-10-04"]
    assert (
        explained["summary"] == "自 2026-09-30 起 2 个工作日：跳过周末 2 天、法定节假日 5 天，至 2026-10-09 24:00 截止"
    )

    assert callback["label"] == "回访" and callback["extended"]
    assert callback["explanation"]["basis"] == "extended" and callback["explanation"]["counted"] == []
    assert callback["explanation"]["summary"] == "由督办延期至 2026-10-20 18:00（原时限：自 2026-09-30 起 1 个工作日）"

    assert ledger["label"] == "台账整改"
    assert ledger["explanation"]["basis"] == "set_by_unit"
    assert ledger["explanation"]["summary"] == "由承办单位在政策上限（15 天）内设定，至 2026-10-12 17:30 截止"

    listed = (await offline_api.get("/api/v1/cases", headers=staff)).json()["items"]
    assert [item["level_label"] for item in listed if item["id"] == case_id] == ["很差"]
