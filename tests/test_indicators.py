"""The indicators (统计指标) on small datasets counted by hand: every figure's arithmetic is written out.

Rows are written directly (tests/support/indicator_data.py) at chosen China times, since the path a
rating took does not change how it counts; tests/test_indicators_workflow.py drives real cases
through intake and the workflow. Both databases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from models.case.vocabulary import Outcome, Stage
from models.db import Database
from models.ratings import RatingChannel, RatingLevel, RatingTarget
from runtime.seed import DemoCredentials
from tests.support.http import login
from tests.support.indicator_data import (
    CHINA,
    RSJ,
    SCJ,
    SCJ_STAFF_MEMBER,
    Rows,
    by_key,
    cn,
    counts,
    report,
    rows,
    value,
)

VS, S, BS = RatingLevel.VERY_SATISFIED, RatingLevel.SATISFIED, RatingLevel.BASICALLY_SATISFIED
D, VD = RatingLevel.DISSATISFIED, RatingLevel.VERY_DISSATISFIED
FEB = {"from": "2025-02-01", "to": "2025-02-28"}


async def _february(r: Rows) -> None:
    """Ratings and transactions of 市场监管局 (unit 2) around February 2025, China time.

    Record  completed (China)      ratings
    A       02-03 10:00 (staff 1)  a1 非常满意 item pc; a2 满意 staff mobile; a3 追评 of a1
    B       02-04 10:00 (staff 1)  b1 非常不满意 item hall_tablet (bad)
    C       02-09                  c1 基本满意 system_default (a default rating)
    D       02-11                  d1 不满意, not adopted (appeal upheld)
    E       02-15                  —
    F       02-01 07:00 (UTC: 01-31) f1 非常满意 at 02-01 07:30 (UTC: 01-31)
    G       01-31 23:59:59         g1 不满意 at 01-31 23:59:59 (January)
    H       02-28 20:00 (item 2)   h1 满意 at 02-28 23:59:59
    I       02-28 21:00            i1 非常满意 at 03-01 00:00:00 (March; UTC still 02-28)
    J (人社局) 02-06               j1 非常不满意
    """
    a = await r.record(SCJ, cn(2, 3, 10), staff_id=SCJ_STAFF_MEMBER)
    await r.rating(a, VS, cn(2, 3, 11))
    await r.rating(a, S, cn(2, 3, 11, 1), channel=RatingChannel.MOBILE, target=RatingTarget.STAFF)
    await r.rating(a, S, cn(2, 10), follow_up=1)
    b = await r.record(SCJ, cn(2, 4, 10), staff_id=SCJ_STAFF_MEMBER)
    await r.rating(b, VD, cn(2, 5), channel=RatingChannel.HALL_TABLET)
    c = await r.record(SCJ, cn(2, 9))
    await r.rating(c, BS, cn(2, 16), channel=RatingChannel.SYSTEM_DEFAULT)
    d = await r.record(SCJ, cn(2, 11))
    await r.rating(d, D, cn(2, 12), adopted=False)
    await r.record(SCJ, cn(2, 15))
    f = await r.record(SCJ, cn(2, 1, 7))
    await r.rating(f, VS, cn(2, 1, 7, 30))
    g = await r.record(SCJ, cn(1, 31, 23, 59, 59))
    await r.rating(g, D, cn(1, 31, 23, 59, 59))
    h = await r.record(SCJ, cn(2, 28, 20), item_id=2)
    await r.rating(h, S, cn(2, 28, 23, 59, 59))
    i = await r.record(SCJ, cn(2, 28, 21))
    await r.rating(i, VS, cn(3, 1, 0, 0, 0))
    j = await r.record(RSJ, cn(2, 6))
    await r.rating(j, VD, cn(2, 6))


async def test_rating_and_transaction_figures_by_hand(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await _february(r)
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
        await _february(r)
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
    defaults = (await report(offline_api, staff, **FEB, channel="system_default"))["total"]
    assert counts(defaults)["ratings"] == 1 and value(defaults, "satisfaction_score") == pytest.approx(3 / 1)
    assert defaults["counts"]["unrated_records"]["drill_down"] is None


async def test_china_midnight_and_month_boundaries(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await _february(r)
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


async def _cases(r: Rows) -> dict[str, int]:
    """Cases of 市场监管局 opened in February 2025 (and one in January), with their timelines.

    C1 real-name: called back, rectified in time, rater satisfied.   C2 real-name: no callback,
    rectification overdue (rungs 1, 2) then rectified, rater not satisfied; 追评 before and after.
    C3: 无法整改 approved.   C4 open, overdue at rung 1: 无法整改 refused, asked again (pending).
    C5 real-name open at verification, overdue at rung 2.   C6 real-name: appeal upheld (not adopted).
    C7: appeal rejected, back in rectification.   C8: appeal awaiting review.
    C9 real-name: a unit-2 transaction's case reassigned to 人社局.   C10 real-name: opened in January.
    C11: a bundle's case (its rating copied onto a second record).
    """
    ids: dict[str, int] = {}
    stage_r, stage_v = Stage.RECTIFICATION, Stage.VERIFICATION

    async def bad(name: str, opened: datetime, real_name: bool = False, adopted: bool = True) -> int:
        record = await r.record(SCJ, opened, no=f"K-{name}")
        ids[f"r{name}"] = await r.rating(record, VD, opened, real_name=real_name, adopted=adopted)
        ids[f"rec{name}"] = record
        return ids[f"r{name}"]

    c1 = ids["C1"] = await r.case(await bad("1", cn(2, 3), real_name=True), SCJ, cn(2, 3), outcome=Outcome.SATISFIED)
    await r.events(c1, ("accepted", stage_v, cn(2, 3)), ("callback", stage_v, cn(2, 3, 13)),
                   ("verified", stage_r, cn(2, 4)), ("rectified", Stage.FEEDBACK, cn(2, 5)),
                   ("rater_responded", Stage.RATER_RESPONSE, cn(2, 6)), ("closed", Stage.CLOSED, cn(2, 6)))  # fmt: skip
    await r.rating(ids["rec1"], S, cn(2, 9), follow_up=1)  # after rectification: good
    c2 = ids["C2"] = await r.case(await bad("2", cn(2, 4), real_name=True), SCJ, cn(2, 4), outcome=Outcome.UNSATISFIED)
    late = {"deadline": "rectification_immediate"}
    await r.events(c2, ("accepted", stage_v, cn(2, 4)), ("verified", stage_r, cn(2, 5)),
                   ("overdue", stage_r, cn(2, 10), {**late, "rung": 1}), ("escalated", stage_r, cn(2, 11), {**late, "rung": 2}),
                   ("rectified", Stage.FEEDBACK, cn(2, 12)), ("closed", Stage.CLOSED, cn(2, 20)))  # fmt: skip
    await r.rating(ids["rec2"], VD, cn(2, 8), follow_up=1)  # before rectification: not counted there
    await r.rating(ids["rec2"], D, cn(2, 13), follow_up=2)  # after rectification: bad
    c3 = ids["C3"] = await r.case(await bad("3", cn(2, 6)), SCJ, cn(2, 6), outcome=Outcome.CANNOT_RECTIFY)
    await r.events(c3, ("verified", stage_r, cn(2, 7)), ("cannot_rectify_requested", stage_r, cn(2, 8)),
                   ("cannot_rectify_approved", Stage.CLOSED, cn(2, 9)))  # fmt: skip
    c4 = ids["C4"] = await r.case(await bad("4", cn(2, 10)), SCJ, cn(2, 10), stage_r, overdue=True, rung=1)
    await r.events(c4, ("verified", stage_r, cn(2, 11)), ("cannot_rectify_requested", stage_r, cn(2, 12)),
                   ("cannot_rectify_refused", stage_r, cn(2, 13)), ("cannot_rectify_requested", stage_r, cn(2, 14)),
                   ("overdue", stage_r, cn(2, 20), {**late, "rung": 1}))  # fmt: skip
    c5 = ids["C5"] = await r.case(
        await bad("5", cn(2, 12), real_name=True), SCJ, cn(2, 12), stage_v, overdue=True, rung=2
    )
    check = {"deadline": "verification"}
    await r.events(c5, ("accepted", stage_v, cn(2, 12)), ("callback", stage_v, cn(2, 12, 14)),
                   ("overdue", stage_v, cn(2, 15), {**check, "rung": 1}), ("escalated", stage_v, cn(2, 16), {**check, "rung": 2}))  # fmt: skip
    not_adopted = await bad("6", cn(2, 14), real_name=True, adopted=False)
    c6 = ids["C6"] = await r.case(not_adopted, SCJ, cn(2, 14), Stage.NOT_ADOPTED, Outcome.NOT_ADOPTED)
    await r.events(c6, ("accepted", stage_v, cn(2, 14)), ("callback", stage_v, cn(2, 14, 15)),
                   ("verified", Stage.APPEAL_FILING, cn(2, 15)), ("appeal_filed", Stage.APPEAL_REVIEW, cn(2, 16)),
                   ("appeal_upheld", Stage.NOT_ADOPTED, cn(2, 17)))  # fmt: skip
    c7 = ids["C7"] = await r.case(await bad("7", cn(2, 15)), SCJ, cn(2, 15), stage_r)
    await r.events(c7, ("verified", Stage.APPEAL_FILING, cn(2, 16)), ("appeal_filed", Stage.APPEAL_REVIEW, cn(2, 17)),
                   ("appeal_rejected", stage_r, cn(2, 18)))  # fmt: skip
    c8 = ids["C8"] = await r.case(await bad("8", cn(2, 16)), SCJ, cn(2, 16), Stage.APPEAL_REVIEW)
    await r.events(c8, ("verified", Stage.APPEAL_FILING, cn(2, 17)), ("appeal_filed", Stage.APPEAL_REVIEW, cn(2, 18)))
    ids["C9"] = await r.case(await bad("9", cn(2, 17), real_name=True), RSJ, cn(2, 17), Stage.ASSIGNED, round_=2)
    c10 = ids["C10"] = await r.case(await bad("10", cn(1, 31, 23, 30), real_name=True), SCJ, cn(1, 31, 23, 30))
    await r.events(c10, ("callback", stage_v, cn(2, 1)))
    lead = await bad("11", cn(2, 18))
    copy_record = await r.record(SCJ, cn(2, 18), no="K-11-copy")
    ids["r11copy"] = await r.rating(copy_record, VD, cn(2, 18), lead=lead)
    ids["C11"] = await r.case(lead, SCJ, cn(2, 18), Stage.ASSIGNED)
    return ids


async def test_case_figures_by_hand(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    async with rows(db) as r:
        await _cases(r)
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    total = (await report(offline_api, staff, **FEB))["total"]
    got = counts(total)
    # Unit 2's February cases of adopted ratings: C1 C2 C3 C4 C5 C7 C8 C11 (C6 not adopted, C9 at 人社局, C10 January).
    assert got["cases"] == 8
    # The bundle's copy is a rating of its own record, its case counts once: 10 February ratings of unit 2 are
    # r1–r5, r7–r9 (r9's case was reassigned, the rating stays the transaction's unit's), r11 and its copy.
    assert got["ratings"] == 10 and got["bad_ratings"] == 10 and got["follow_ups"] == 3
    # Real-name: C1 C2 C5 (C6 is real-name but not adopted); called back: C1, C5.
    assert (got["real_name_cases"], got["called_back_cases"]) == (3, 2)
    assert value(total, "callback_rate") == pytest.approx(2 / 3)
    # To rectify: C1 C2 C4 C7 (C3 closed as 无法整改); rectified C1 C2; in time C1 only (C2's went overdue).
    assert (got["rectification_cases"], got["rectified_cases"], got["rectified_on_time_cases"]) == (4, 2, 1)
    assert value(total, "rectification_rate") == pytest.approx(2 / 4)
    assert value(total, "on_time_rectification_rate") == pytest.approx(1 / 2)
    # The rater answered on C1 (satisfied) and C2 (not satisfied).
    assert (got["rater_answered_cases"], got["rater_satisfied_cases"]) == (2, 1)
    assert value(total, "rectification_satisfaction_rate") == pytest.approx(1 / 2)
    # 追评 after rectification: C1's 满意 and C2's second 不满意 (C2's first came before it was rectified).
    assert (got["follow_ups_after_rectification"], got["good_follow_ups_after_rectification"]) == (2, 1)
    assert value(total, "follow_up_satisfaction_rate") == pytest.approx(1 / 2)
    # 无法整改: asked on C3 (approved) and C4 (refused, then asked again: pending).
    assert got["cannot_rectify_requested_cases"] == 2
    assert (got["cannot_rectify_approved_cases"], got["cannot_rectify_refused_cases"]) == (1, 1)
    assert got["cannot_rectify_pending_cases"] == 1
    assert value(total, "cannot_rectify_approval_rate") == pytest.approx(1 / 2)
    # Overdue now: C4 at rung 1, C5 at rung 2. Ever reached: rung 1 C2 C4 C5, rung 2 C2 C5, rung 3 none.
    assert got["overdue_open_cases"] == 2
    assert [got[f"overdue_open_cases_rung_{n}"] for n in range(1, 6)] == [1, 1, 0, 0, 0]
    assert [got[f"escalated_cases_rung_{n}"] for n in range(1, 6)] == [3, 2, 0, 0, 0]
    # Appeals count not-adopted cases (that is what an upheld appeal makes): C6 upheld, C7 rejected, C8 waiting.
    assert (got["appealed_cases"], got["appeal_decided_cases"], got["appeal_pending_cases"]) == (3, 2, 1)
    assert (got["appeal_upheld_cases"], got["appeal_rejected_cases"]) == (1, 1)
    assert value(total, "appeal_uphold_rate") == pytest.approx(1 / 2)

    # Each unit's figures: the supervisor's report by unit. C9 stands at 人社局 (real-name, not called back).
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    units = by_key(await report(offline_api, supervisor, **FEB, group_by="unit"))
    assert list(units) == ["1", "2", "3"]
    assert counts(units["3"])["cases"] == 1 and value(units["3"], "callback_rate") == pytest.approx(0 / 1)
    assert counts(units["3"])["ratings"] == 0  # r9 belongs to its transaction's unit, 市场监管局
    assert value(units["2"], "appeal_uphold_rate") == pytest.approx(1 / 2)
    office_uphold = units["1"]["indicators"]["appeal_uphold_rate"]
    assert office_uphold["value"] is None and office_uphold["reason"] == "zero_denominator"
    assert "申诉已复核工单数" in office_uphold["reason_label"]


async def test_every_count_lists_exactly_what_it_counts(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await _february(r)
        ids = await _cases(r)
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    body = await report(offline_api, supervisor, **FEB, group_by="unit")
    checked = 0
    for group in [body["total"], *body["groups"]]:
        for name, count in group["counts"].items():
            if count["drill_down"] is None:
                continue
            listed = await offline_api.get(count["drill_down"] + "&limit=200", headers=supervisor)
            assert listed.status_code == 200, (name, listed.text)
            page = listed.json()
            assert page["total"] == count["value"] == len(page["items"]), (group["key"], name)
            checked += 1
    assert checked > 100

    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    called = await offline_api.get("/api/v1/ratings", params={**FEB, "subset": "called_back_cases"}, headers=staff)
    assert {item["case_id"] for item in called.json()["items"]} == {ids["C1"], ids["C5"]}
    assert {item["rater_phone"] for item in called.json()["items"]} == {"139****1111"}  # masked
    unrated = await offline_api.get(
        "/api/v1/service-records", params={**FEB, "subset": "unrated_records"}, headers=staff
    )
    # D (its rating not adopted), C6's record (likewise) and E (never rated).
    assert sorted(item["completed_at"][:10] for item in unrated.json()["items"]) == [
        "2025-02-11",
        "2025-02-14",
        "2025-02-15",
    ]
    # The bundle's copy lists its lead rating's case.
    bundle = await offline_api.get("/api/v1/ratings", params={**FEB, "unit_id": SCJ, "limit": 200}, headers=staff)
    copy = next(item for item in bundle.json()["items"] if item["id"] == ids["r11copy"])
    assert copy["case_id"] == ids["C11"] and copy["lead_rating_id"] == ids["r11"]


async def _scoped(r: Rows) -> None:
    """One February rating each in 市场监管局 (2), its new sub-unit (4) and 人社局 (3); unit 4 is 市场监管局's."""
    sub = await r.unit("YT-SCJ-KFQ", "市场监管局开发区分局", parent_id=SCJ)
    assert sub == 4
    for unit, level in ((SCJ, S), (sub, VD), (RSJ, VS)):
        await r.rating(await r.record(unit, cn(2, 10)), level, cn(2, 10))


async def test_scope_a_unit_sees_only_its_own(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await _scoped(r)
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    assert counts((await report(offline_api, staff, **FEB))["total"])["ratings"] == 1  # its own unit only
    for params, field in (({"unit_id": RSJ}, "unit_id"), ({"unit_id": 4}, "unit_id"), ({"staff_id": 2}, "staff_id")):
        refused = await offline_api.get("/api/v1/indicators", params={**FEB, **params}, headers=staff)
        assert refused.status_code == 403 and refused.json()["detail"]["code"] == "outside_scope", params
        assert refused.json()["detail"]["field"] == field
        listed = await offline_api.get("/api/v1/ratings", params={**FEB, **params}, headers=staff)
        assert listed.status_code == 403
    mine = (await offline_api.get("/api/v1/ratings", params=FEB, headers=staff)).json()
    assert [item["unit_id"] for item in mine["items"]] == [SCJ]

    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    assert counts((await report(offline_api, supervisor, **FEB))["total"])["ratings"] == 3
    assert counts((await report(offline_api, supervisor, **FEB, unit_id=SCJ))["total"])["ratings"] == 2  # with unit 4
    own = await report(offline_api, supervisor, **FEB, unit_id=SCJ, include_subunits="false")
    assert counts(own["total"])["ratings"] == 1 and own["filters"]["include_subunits"] == "false"
    # Below the office: its own figures (none), 市场监管局 with its sub-unit, 人社局.
    below = await report(offline_api, supervisor, **FEB, group_by="subunit")
    assert [(g["key"], g["label"], counts(g)["ratings"]) for g in below["groups"]] == [
        ("1", "烟台市政务服务管理办公室（本级）", 0),
        ("2", "烟台市市场监督管理局", 2),
        ("3", "烟台市人力资源和社会保障局", 1),
    ]
    assert below["groups"][1]["filters"]["unit_id"] == "2" and "include_subunits" not in below["groups"][1]["filters"]
    each = by_key(await report(offline_api, supervisor, **FEB, group_by="unit"))
    assert {key: counts(group)["ratings"] for key, group in each.items()} == {"1": 0, "2": 1, "3": 1, "4": 1}
    # A subtree's score is over all its ratings: 市场监管局's 满意 (4) and its sub-unit's 非常不满意 (1).
    assert value((await report(offline_api, supervisor, **FEB, unit_id=SCJ))["total"], "satisfaction_score") == (
        pytest.approx((4 + 1) / 2)
    )

    # Another supervisor (of 人社局 only) sees 人社局's figures, not 市场监管局's.
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    account = {"username": "rsj_sup", "display_name": "人社局 督办", "role": "supervisor", "unit_id": RSJ,
               "password": "another-long-password"}  # fmt: skip
    assert (await offline_api.post("/api/v1/admin/users", json=account, headers=admin)).status_code == 201
    other = await login(offline_api, "rsj_sup", "another-long-password")
    assert counts((await report(offline_api, other, **FEB))["total"])["ratings"] == 1
    assert (
        await offline_api.get("/api/v1/indicators", params={**FEB, "unit_id": SCJ}, headers=other)
    ).status_code == 403

    # Reviewers decide appeals and have no figures; business systems neither.
    reviewer = await login(offline_api, "reviewer", demo.passwords["reviewer"])
    refused = await offline_api.get("/api/v1/indicators", params=FEB, headers=reviewer)
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "no_indicator_scope"
    as_system = await offline_api.get("/api/v1/indicators", params=FEB, headers={"X-API-Key": demo.api_key})
    assert as_system.status_code == 401
    everything = await report(offline_api, admin, **FEB, group_by="subunit")
    # One unit at the top: the administrator sees what its supervisor sees, its own figures and each unit below.
    assert [(g["key"], counts(g)["ratings"]) for g in everything["groups"]] == [("1", 0), ("2", 2), ("3", 1)]


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
