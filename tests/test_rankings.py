"""Monthly rankings (排名通报) on hand-computed months: the formula, ties, the minimum, staff ratings only, windows,
the talk flag (约谈) after M months at the bottom and not after M−1, scope and every 422.

The datasets and the formula written out by hand are in tests/support/ranking_data.py.
"""

from __future__ import annotations

from typing import Any

import httpx

from models.db import Database
from models.ratings import RatingTarget
from models.windows import ServiceWindow
from runtime.seed import DemoCredentials
from tests.support.http import login
from tests.support.indicator_data import cn, rows
from tests.support.pages import page_login
from tests.support.ranking_data import L, by_hand, ratings_of, small_rules, three_months, window_ratings

PATH = "/api/v1/rankings"


async def _ranking(api: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await api.get(PATH, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _by_key(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {row["key"]: row for row in body["ranking"]["rows"]}


async def test_units_ranked_by_the_formula_with_ties_and_the_minimum(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await small_rules(db)
    await three_months(db)
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    body = await _ranking(offline_api, supervisor, month="2025-03", kind="unit")
    rows_ = _by_key(body)
    # Unit 2: 5 4 4 1 → score 14/4, good 3/4, its one rectified case went overdue → on time 0/1.
    assert rows_[2]["score"] == by_hand(14 / 4, 3 / 4, 0.0) == 57.5
    # Unit 3: 5 5 4 (the not-adopted 1 is out), no rectified case → the on-time rate counts as 1.
    assert rows_[3]["ratings"] == 3
    assert rows_[3]["score"] == by_hand(14 / 3, 1.0, None) == 96.67
    # Units 4 and 5: 5 4 4 and 4 5 4, the same score: both second, and the next is fourth.
    assert rows_[4]["score"] == rows_[5]["score"] == by_hand(13 / 3, 1.0, None) == 93.33
    assert [rows_[k]["rank"] for k in (3, 4, 5, 2)] == [1, 2, 2, 4]
    assert rows_[4]["tied"] == rows_[5]["tied"] == 2 and rows_[3]["tied"] == 1
    # Two ratings are fewer than the three needed: listed, not ranked, with the reason; the office has none.
    assert rows_[6]["rank"] is None and rows_[6]["score"] is None and "不足 3 条" in rows_[6]["reason"]
    assert rows_[1]["rank"] is None and rows_[1]["ratings"] == 0
    assert body["ranking"]["ranked"] == 4
    # Best first, then the unranked; only the last is at the bottom (bottom 1).
    assert [row["key"] for row in body["ranking"]["rows"]][:4] in ([3, 4, 5, 2], [3, 5, 4, 2])
    assert [row["key"] for row in body["ranking"]["rows"] if row["bottom"]] == [2]
    assert rows_[2]["values"] == {
        "satisfaction_score": 3.5, "good_rate": 0.75, "on_time_rectification_rate": 0.0,
    }  # fmt: skip
    assert body["ranking"]["weights"] == {
        "satisfaction_score": 0.5,
        "good_rate": 0.3,
        "on_time_rectification_rate": 0.2,
    }
    assert "满意度得分" in body["ranking"]["formula"] and body["ranking"]["min_ratings"] == 3


async def test_a_talk_after_m_months_at_the_bottom_and_not_after_m_minus_1(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await small_rules(db)
    await three_months(db)
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    # January: unit 3 at the bottom (80 against 100); February: unit 2 (80 against 100); March: unit 2 again.
    january = await _ranking(offline_api, supervisor, month="2025-01")
    assert [r["key"] for r in january["ranking"]["rows"] if r["bottom"]] == [3]
    february = await _ranking(offline_api, supervisor, month="2025-02")
    assert [r["key"] for r in february["ranking"]["rows"] if r["bottom"]] == [2]
    assert february["talks"] == []  # one month at the bottom is M − 1 = 1: no talk yet
    march = await _ranking(offline_api, supervisor, month="2025-03")
    assert len(march["talks"]) == 1
    talk = march["talks"][0]
    assert talk["unit_id"] == 2
    assert [(m["month"], m["rank"], m["ranked"], m["score"], m["ratings"]) for m in talk["months"]] == [
        ("2025-02", 2, 2, by_hand(3, 1.0, None), 3),
        ("2025-03", 4, 4, 57.5, 4),
    ]
    # Window and staff rankings carry no talk flags.
    assert (await _ranking(offline_api, supervisor, month="2025-03", kind="staff"))["talks"] == []


async def test_staff_are_ranked_on_their_staff_ratings_only(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await small_rules(db)
    async with rows(db) as r:
        # Staff 1's transactions: three 非常满意 on the staff member, and three 非常不满意 on the item.
        for _ in range(3):
            record = await r.record(2, cn(4, 8), staff_id=1)
            await r.rating(record, L[5], cn(4, 8), target=RatingTarget.STAFF)
            await r.rating(record, L[1], cn(4, 8), target=RatingTarget.ITEM)
        await ratings_of(r, 3, [3, 3, 3], cn(4, 9), staff_id=2, target=RatingTarget.STAFF)
        await ratings_of(r, 3, [4, 4], cn(4, 9), staff_id=2, target=RatingTarget.ITEM)
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    body = await _ranking(offline_api, supervisor, month="2025-04", kind="staff")
    rows_ = _by_key(body)
    assert rows_[1]["ratings"] == 3 and rows_[1]["score"] == by_hand(5, 1.0, None) == 100.0
    assert rows_[2]["ratings"] == 3 and rows_[2]["score"] == by_hand(3, 1.0, None) == 80.0
    assert (rows_[1]["rank"], rows_[2]["rank"]) == (1, 2)
    assert rows_[1]["unit_id"] == 2 and "陈窗口" in rows_[1]["label"]


async def test_windows_are_ranked_on_the_ratings_given_through_their_code(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await small_rules(db)
    async with rows(db) as r:
        r.session.add(ServiceWindow(unit_id=3, code="YT-RSJ-01", name="社保 1 号窗口"))
        await r.session.flush()
        await window_ratings(r, "YT-SCJ-01", 2, [5, 5, 4], cn(5, 6))
        await window_ratings(r, "YT-RSJ-01", 3, [4, 4, 4, 1], cn(5, 6))
        await window_ratings(r, "YT-RSJ-01", 3, [1, 1], cn(5, 6), used=False)  # checked, never used: not the window's
        await ratings_of(r, 2, [1, 1, 1], cn(5, 6))  # rated another way: not the window's
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    body = await _ranking(offline_api, supervisor, month="2025-05", kind="window")
    by_label = {row["label"]: row for row in body["ranking"]["rows"]}
    scj, rsj = by_label["企业登记 1 号窗口（YT-SCJ-01）"], by_label["社保 1 号窗口（YT-RSJ-01）"]
    assert scj["ratings"] == 3 and scj["score"] == by_hand(14 / 3, 1.0, None) == 96.67
    assert rsj["ratings"] == 4 and rsj["score"] == by_hand(13 / 4, 3 / 4, None) == 75.0
    assert (scj["rank"], rsj["rank"], scj["unit_id"], rsj["unit_id"]) == (1, 2, 2, 3)


async def test_scope_and_refusals(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    await small_rules(db)
    await three_months(db)
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    own = await _ranking(offline_api, staff, month="2025-03")
    assert [row["key"] for row in own["ranking"]["rows"]] == [2]  # a unit's staff see their own unit only
    outside = await offline_api.get(PATH, params={"month": "2025-03", "unit_id": "3"}, headers=staff)
    assert outside.status_code == 403 and outside.json()["detail"]["field"] == "unit_id"
    reviewer = await login(offline_api, "reviewer", demo.passwords["reviewer"])
    assert (await offline_api.get(PATH, params={"month": "2025-03"}, headers=reviewer)).status_code == 403
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    narrowed = await _ranking(offline_api, supervisor, month="2025-03", unit_id="2")
    assert [row["key"] for row in narrowed["ranking"]["rows"]] == [2]
    for params, code, field in (
        ({"month": "2025-13"}, "bad_month", "month"),
        ({"month": "2099-01"}, "month_in_future", "month"),
        ({"month": "2025-03", "kind": "team"}, "unknown_kind", "kind"),
        ({"month": "2025-03", "unit_id": "999"}, "unknown_unit", "unit_id"),
        ({"month": "2025-03", "region": "999999"}, "unknown_region", "region"),
    ):
        refused = await offline_api.get(PATH, params=params, headers=supervisor)
        assert refused.status_code == 422, (params, refused.text)
        assert (refused.json()["detail"]["code"], refused.json()["detail"]["field"]) == (code, field)


async def test_the_rankings_page(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    await small_rules(db)
    await three_months(db)
    assert (await page_login(offline_api, "supervisor", demo.passwords["supervisor"])).status_code == 303
    page = await offline_api.get("/rankings", params={"month": "2025-03", "kind": "unit"})
    assert page.status_code == 200
    assert "约谈提示" in page.text and "57.50" in page.text and "96.67" in page.text and "（并列）" in page.text
    assert "不参与排名" in page.text
