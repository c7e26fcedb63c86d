"""Case indicators on a hand-counted dataset, every count's list against its count, and who sees what.

The dataset (tests/support/indicator_datasets.py: cases) is written directly; the workflow writing the
same timelines for real is tests/test_indicators_workflow.py. Both databases.
"""

from __future__ import annotations

import httpx
import pytest

from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.http import login
from tests.support.indicator_data import RSJ, SCJ, by_key, counts, report, rows, value
from tests.support.indicator_datasets import cases, february, scoped

FEB = {"from": "2025-02-01", "to": "2025-02-28"}


async def test_case_figures_by_hand(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    async with rows(db) as r:
        await cases(r)
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
        await february(r)
        ids = await cases(r)
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


async def test_scope_a_unit_sees_only_its_own(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await scoped(r)
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
