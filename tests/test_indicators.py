"""The indicators (统计指标) on small datasets counted by hand: every figure's arithmetic is written out.

The ratings and transactions of February 2025 (tests/support/indicator_datasets.py: february, a table
of every row) are written directly at chosen China times, since the path a rating took does not change
how it counts. Cases, lists and scope: tests/test_indicator_cases.py; cases run by the real workflow:
tests/test_indicators_workflow.py. Both databases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from models.db import Database
from models.ratings import RatingLevel
from runtime.seed import DemoCredentials
from tests.support.http import login
from tests.support.indicator_data import (
    CHINA,
    SCJ,
    SCJ_STAFF_MEMBER,
    by_key,
    cn,
    counts,
    report,
    rows,
    value,
)
from tests.support.indicator_datasets import february

VS, S, BS = RatingLevel.VERY_SATISFIED, RatingLevel.SATISFIED, RatingLevel.BASICALLY_SATISFIED
D, VD = RatingLevel.DISSATISFIED, RatingLevel.VERY_DISSATISFIED
FEB = {"from": "2025-02-01", "to": "2025-02-28"}


async def test_rating_and_transaction_figures_by_hand(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await february(r)
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    total = (await report(offline_api, staff, **FEB))["total"]
    got = counts(total)
    # February ratings of unit 2: a1, a2, b1, c1, f1, h1 (d1 not adopted, a3 a follow-up, g1 January, i1 March).
    assert got["ratings"] == 6
    assert got["default_ratings"] == 1 and got["active_ratings"] == 6 - 1  # c1 is the system's
    assert got["good_ratings"] == 5 and got["bad_ratings"] == 1  # b1 alone is bad
    assert (got["level_very_satisfied"], got["level_satisfied"], got["level_basically_satisfied"]) == (2, 2, 1)
    assert (got["level_dissatisfied"], got["level_very_dissatisfied"]) == (0, 1)
    assert got["follow_ups"] == 1 and got["not_adopted_ratings"] == 1  # a3; d1
    # Yantai scores 5/4/3/2/1: a1 5 + a2 4 + b1 1 + c1 3 + f1 5 + h1 4 = 22 over 6.
    assert value(total, "satisfaction_score") == pytest.approx(22 / 6)
    assert value(total, "good_rate") == pytest.approx(5 / 6)
    assert value(total, "bad_rate") == pytest.approx(1 / 6)
    # February transactions: A B C D E F H I (G is January's) = 8; rated A B C F H I = 6 (I in March: still rated);
    # by the rater A B F H I = 5; C by default only; D (its rating not adopted) and E unrated.
    assert got["completed_records"] == 8
    assert (got["rated_records"], got["actively_rated_records"], got["default_rated_records"]) == (6, 5, 1)
    assert got["unrated_records"] == 2 and 5 + 1 + 2 == 8
    assert value(total, "rating_rate") == pytest.approx(6 / 8)
    assert value(total, "active_rating_rate") == pytest.approx(5 / 8)
    assert value(total, "not_rated_rate") == pytest.approx(2 / 8)

    # The supervisor above both units also sees 人社局's j1 (非常不满意, 1 point) and its record J.
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    above = (await report(offline_api, supervisor, **FEB))["total"]
    assert counts(above)["ratings"] == 7 and counts(above)["bad_ratings"] == 2
    assert value(above, "satisfaction_score") == pytest.approx((22 + 1) / 7)
    assert counts(above)["completed_records"] == 9 and value(above, "rating_rate") == pytest.approx(7 / 9)


async def test_staff_item_and_channel_figures(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await february(r)
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    # Staff ratings only: a2 (满意, 4 points). Transactions that had a staff member: A and B; rated on the staff: A.
    for params in ({"target": "staff"}, {"staff_id": SCJ_STAFF_MEMBER}):
        total = (await report(offline_api, staff, **FEB, **params))["total"]
        assert counts(total)["ratings"] == 1 and value(total, "satisfaction_score") == pytest.approx(4 / 1)
        assert counts(total)["completed_records"] == 2 and value(total, "rating_rate") == pytest.approx(1 / 2)
    # Item ratings: a1 5 + b1 1 + c1 3 + f1 5 + h1 4 = 18 over 5; every record can be rated on its item.
    items = (await report(offline_api, staff, **FEB, target="item"))["total"]
    assert counts(items)["ratings"] == 5 and value(items, "satisfaction_score") == pytest.approx(18 / 5)
    assert counts(items)["completed_records"] == 8 and counts(items)["rated_records"] == 6

    by_staff = by_key(await report(offline_api, staff, **FEB, group_by="staff"))
    assert list(by_staff) == [str(SCJ_STAFF_MEMBER)] and by_staff["1"]["label"] == "陈窗口（SCJ-001）"
    assert counts(by_staff["1"])["ratings"] == 1 and counts(by_staff["1"])["completed_records"] == 2

    by_item = by_key(await report(offline_api, staff, **FEB, group_by="item"))
    # Item 2 is H's only: h1. Item 1 has the rest: a1 a2 b1 c1 f1, and records A B C D E F I.
    assert counts(by_item["2"])["ratings"] == 1 and counts(by_item["2"])["completed_records"] == 1
    assert counts(by_item["1"])["ratings"] == 5 and counts(by_item["1"])["completed_records"] == 7
    assert by_item["1"]["label"] == "企业设立登记"

    by_channel = by_key(await report(offline_api, staff, **FEB, group_by="channel"))
    assert {key: counts(group)["ratings"] for key, group in by_channel.items()} == {
        "pc": 3,  # a1, f1, h1 (d1 is pc too but not adopted)
        "mobile": 1,  # a2
        "hall_tablet": 1,  # b1
        "system_default": 1,  # c1
    }
    assert by_channel["system_default"]["label"] == "系统默认评价"
    assert counts(by_channel["pc"])["not_adopted_ratings"] == 1 and counts(by_channel["pc"])["follow_ups"] == 1
    # A transaction has no rating channel: its figures are not given by channel, and say why.
    assert counts(by_channel["pc"])["completed_records"] is None
    rate = by_channel["pc"]["indicators"]["rating_rate"]
    assert rate["value"] is None and rate["reason"] == "not_by_channel"
    lean = await report(offline_api, staff, **FEB, group_by="channel", drill_down="false")
    assert {c["drill_down"] for g in [lean["total"], *lean["groups"]] for c in g["counts"].values()} == {None}
    defaults = (await report(offline_api, staff, **FEB, channel="system_default"))["total"]
    assert counts(defaults)["ratings"] == 1 and value(defaults, "satisfaction_score") == pytest.approx(3 / 1)
    assert defaults["counts"]["unrated_records"]["drill_down"] is None


async def test_china_midnight_and_month_boundaries(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await february(r)
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    days = by_key(await report(offline_api, staff, **{"from": "2025-01-31", "to": "2025-03-01"}, group_by="day"))
    # g1 at 01-31 23:59:59 is January's last second; f1 at 02-01 07:30 China is 01-31 in UTC but February here.
    assert counts(days["2025-01-31"])["ratings"] == 1 and counts(days["2025-01-31"])["completed_records"] == 1
    assert counts(days["2025-02-01"])["ratings"] == 1 and counts(days["2025-02-01"])["completed_records"] == 1
    # h1 at 02-28 23:59:59 stays in February; i1 at 03-01 00:00:00 (02-28 16:00 UTC) is March's.
    assert counts(days["2025-02-28"])["ratings"] == 1 and counts(days["2025-02-28"])["completed_records"] == 2
    assert counts(days["2025-03-01"])["ratings"] == 1 and counts(days["2025-03-01"])["completed_records"] == 0
    assert days["2025-03-01"]["filters"]["from"] == days["2025-03-01"]["filters"]["to"] == "2025-03-01"

    body = await report(offline_api, staff, **{"from": "2025-01-15", "to": "2025-03-31"}, group_by="month")
    months = by_key(body)
    assert list(months) == ["2025-01", "2025-02", "2025-03"]
    # January: g1 (bad) on G; February as counted above; March: i1, and no transaction completed in March.
    assert counts(months["2025-01"])["ratings"] == 1 and value(months["2025-01"], "bad_rate") == pytest.approx(1 / 1)
    assert counts(months["2025-02"])["ratings"] == 6 and counts(months["2025-02"])["completed_records"] == 8
    assert counts(months["2025-03"])["ratings"] == 1 and counts(months["2025-03"])["completed_records"] == 0
    march_rate = months["2025-03"]["indicators"]["rating_rate"]
    assert march_rate["value"] is None and march_rate["reason"] == "zero_denominator"
    assert "办结办件数" in march_rate["reason_label"]
    # A month row lists only its days inside the period; the total is the sum of the rows.
    assert {"from": "2025-01-15", "to": "2025-01-31"}.items() <= months["2025-01"]["filters"].items()
    assert counts(body["total"])["ratings"] == 1 + 6 + 1 and counts(body["total"])["completed_records"] == 1 + 8 + 0

    # No period given: this month to date, China time.
    today = datetime.now(CHINA).date()
    default = await report(offline_api, staff)
    assert default["period"] == {
        "from": today.replace(day=1).isoformat(),
        "to": today.isoformat(),
        "timezone": "Asia/Shanghai",
    }


async def test_zero_denominators_and_scores_of_each_region(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        shanwei = await r.region("441500", "shanwei")
        office = await r.unit("SW-ZWB", "汕尾市政务服务管理局", region_id=shanwei)
        for level in (VS, S, VD):
            await r.rating(await r.record(office, cn(2, 20)), level, cn(2, 20))
        await r.rating(await r.record(SCJ, cn(2, 20)), VS, cn(2, 20))
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    regions = by_key(await report(offline_api, admin, **FEB, group_by="region"))
    # Shanwei scores 10/8/6/3/0: 10 + 8 + 0 = 18 over 3 = 6.0; Yantai's one 非常满意: 5 over 1.
    assert value(regions[str(shanwei)], "satisfaction_score") == pytest.approx((10 + 8 + 0) / 3) == 6.0
    assert value(regions["1"], "satisfaction_score") == pytest.approx(5 / 1)
    assert value(regions[str(shanwei)], "good_rate") == pytest.approx(2 / 3)
    assert regions[str(shanwei)]["filters"]["region"] == "441500"
    # Over both regions an average would mix a 10-point and a 5-point scale: no value, and why.
    mixed = (await report(offline_api, admin, **FEB))["total"]["indicators"]["satisfaction_score"]
    assert mixed["value"] is None and mixed["reason"] == "mixed_score_scales" and "shanwei" in mixed["reason_label"]
    assert value((await report(offline_api, admin, **FEB, region="441500"))["total"], "satisfaction_score") == 6.0
    # Two units at the top now: by subunit the administrator gets each one with everything below it.
    tops = await report(offline_api, admin, **FEB, group_by="subunit")
    assert [(g["key"], counts(g)["ratings"]) for g in tops["groups"]] == [("1", 1), (str(office), 3)]

    # June has nothing: every count 0, every indicator null with its reason — never 0, never an error.
    empty = (await report(offline_api, admin, **{"from": "2025-06-01", "to": "2025-06-30"}))["total"]
    assert set(counts(empty).values()) == {0}
    for name, indicator in empty["indicators"].items():
        assert indicator["value"] is None and indicator["reason"] == "zero_denominator", name
    assert empty["indicators"]["callback_rate"]["reason_label"] == "分母为 0（实名差评工单数为 0），无法计算"


@pytest.mark.parametrize(
    ("params", "field", "code", "said"),
    [
        ({"from": "2025-02-01"}, "to", "incomplete_period", "from 与 to"),
        ({"from": "2025-02-30", "to": "2025-03-01"}, "from", "bad_date", "'2025-02-30'"),
        ({"from": "2025-03-01", "to": "2025-02-01"}, "to", "bad_range", "2025-02-01"),
        ({**FEB, "group_by": "week"}, "group_by", "unknown_group_by", "'week'"),
        ({"from": "2024-01-01", "to": "2025-02-28", "group_by": "day"}, "group_by", "period_too_long", "425"),
        ({**FEB, "channel": "fax"}, "channel", "unknown_channel", "'fax'"),
        ({**FEB, "target": "robot"}, "target", "unknown_target", "'robot'"),
        ({**FEB, "region": "999999"}, "region", "unknown_region", "'999999'"),
        ({**FEB, "unit_id": 999}, "unit_id", "unknown_unit", "999"),
        ({**FEB, "item_id": 999}, "item_id", "unknown_item", "999"),
        ({**FEB, "staff_id": 999}, "staff_id", "unknown_staff", "999"),
        ({**FEB, "unit_id": 0}, "unit_id", "invalid_request", "请求内容有误"),
    ],
)
async def test_bad_parameters_are_422_naming_field_and_value(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, params: dict[str, Any], field: str, code: str, said: str
) -> None:
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    for path in ("/api/v1/indicators", "/api/v1/ratings", "/api/v1/service-records"):
        if path != "/api/v1/indicators" and field == "group_by":
            continue
        response = await offline_api.get(path, params=params, headers=admin)
        assert response.status_code == 422, (path, response.text)
        detail = response.json()["detail"]
        assert (detail["field"], detail["code"]) == (field, code) and said in detail["message"], detail


async def test_a_list_takes_only_its_own_kind_of_count(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    for path, subset in (("/api/v1/ratings", "unrated_records"), ("/api/v1/service-records", "bad_ratings"),
                         ("/api/v1/ratings", "bogus")):  # fmt: skip
        response = await offline_api.get(path, params={**FEB, "subset": subset}, headers=admin)
        assert response.status_code == 422 and response.json()["detail"]["field"] == "subset"
        assert repr(subset) in response.json()["detail"]["message"]
    definitions = (await offline_api.get("/api/v1/indicators/definitions", headers=admin)).json()
    assert {c["name"] for c in definitions["counts"]} >= {"ratings", "unrated_records", "appeal_upheld_cases"}
    score = next(i for i in definitions["indicators"] if i["name"] == "satisfaction_score")
    assert score["label"] == "满意度得分" and score["denominator"] == "ratings"


async def test_a_region_on_a_profile_no_longer_loaded_is_scored_nationally(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        retired = await r.region("990000", "retired-profile")
        unit = await r.unit("RT-ZWB", "某市政务服务中心", region_id=retired)
        for level in (VS, D):
            await r.rating(await r.record(unit, cn(2, 20)), level, cn(2, 20))
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    total = (await report(offline_api, admin, **FEB, region="990000"))["total"]
    # As intake does, the national profile stands in: 非常满意 5 + 不满意 2 = 7 over 2.
    assert value(total, "satisfaction_score") == pytest.approx((5 + 2) / 2)
