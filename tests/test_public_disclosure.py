"""结果全公开: the redaction check (each kind of personal data), the review before anything is public, the public
pages scanned for the planted personal data, scope, rate limits and cache headers.
"""

from __future__ import annotations

from typing import Any

import httpx

from api.rate_limit import PUBLIC_PREFIXES
from config import Settings
from models.db import Database
from models.disclosure_check import FindingKind, KnownRater, check_text
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import login
from tests.support.pages import page_login
from tests.support.ranking_data import closed_case_with_texts, small_rules, three_months
from tests.support.reports import audit_counts
from tests.support.services import api_client

NAME, PHONE, ID_CARD, EMAIL, ADDRESS = (
    "李四光",
    "13811112222",
    "370602199001011234",
    "lisi@example.com",
    "幸福路12号3单元",
)
COMMENT = "窗口工作人员王五态度恶劣"
PLANTED = [NAME, PHONE, ID_CARD, EMAIL, ADDRESS, "王五", "1381111", "19900101"]


def test_the_check_blocks_each_kind_of_personal_data() -> None:
    rater = KnownRater(name=NAME)
    for value, kind in (
        (PHONE, FindingKind.PHONE),
        ("0535-6688123", FindingKind.PHONE),
        (ID_CARD, FindingKind.ID_CARD),
        ("37060219900101123X", FindingKind.ID_CARD),
        (EMAIL, FindingKind.EMAIL),
        (NAME, FindingKind.RATER_NAME),
        (ADDRESS, FindingKind.ADDRESS),
    ):
        result = check_text(f"已电话联系，{value}，问题已整改", rater)
        assert [f.kind for f in result.findings] == [kind], value
        assert value not in result.masked and not result.clean
    clean = check_text("增开两个企业登记窗口，推行预约办理，12345 热线可查询", rater)
    assert clean.clean and clean.masked == "增开两个企业登记窗口，推行预约办理，12345 热线可查询"
    # The ID number is not also taken for a phone number, and the counts are per kind.
    both = check_text(f"{ID_CARD} 与 {PHONE}、{PHONE}", rater)
    assert {f.kind: f.count for f in both.findings} == {FindingKind.ID_CARD: 1, FindingKind.PHONE: 2}


async def _hostile_case(db: Database) -> int:
    """A closed March case of unit 3 whose rectification and feedback texts hold the rater's personal data."""
    return await closed_case_with_texts(
        db,
        "PUB-0001",
        measures=f"已致电{NAME}（{PHONE}），核对身份证{ID_CARD}，上门至{ADDRESS}道歉，并增开窗口",
        feedback=f"{NAME}您好，结果已发至 {EMAIL}",
        comment=COMMENT,
        rater_name=NAME,
        rater_phone=PHONE,
        rater_email=EMAIL,
    )


def _assert_no_pii(page: str) -> None:
    found = [value for value in PLANTED if value in page]
    assert not found, f"personal data on a public page: {found}"


async def _public(api: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
    api.cookies.clear()  # no sign-in
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "public, max-age=300"
    return response


async def test_nothing_unreviewed_is_public_and_public_pages_hold_no_personal_data(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await small_rules(db)
    clean_case = await three_months(db)
    hostile_case = await _hostile_case(db)
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    report = (await offline_api.post("/api/v1/reports", json={"month": "2025-03"}, headers=supervisor)).json()
    queue = await offline_api.get("/api/v1/disclosures", params={"month": "2025-03"}, headers=supervisor)
    assert queue.status_code == 200, queue.text
    by_case: dict[int, dict[str, Any]] = {row["case_id"]: row for row in queue.json()}
    assert set(by_case) == {clean_case, hostile_case}
    hostile = by_case[hostile_case]
    assert {f["kind"]: f["count"] for f in hostile["findings"]} == {
        "phone": 1, "id_card": 1, "email": 1, "address": 1, "rater_name": 2,
    }  # fmt: skip
    _assert_no_pii(hostile["proposed"])
    assert "［电话号码已隐去］" in hostile["proposed"] and hostile["status"] == "pending"
    assert by_case[clean_case]["findings"] == [] and "增开两个窗口" in by_case[clean_case]["proposed"]
    # Read again: no second row per case.
    assert (
        len((await offline_api.get("/api/v1/disclosures", params={"month": "2025-03"}, headers=supervisor)).json()) == 2
    )

    # Before any review: the public page has the results but no rectification text.
    page = (await _public(offline_api, "/public/report", id=str(report["id"]))).text
    assert "烟台市市场监督管理局" in page and "增开两个窗口" not in page and "本月暂无已审核公开的整改情况" in page
    _assert_no_pii(page)

    # A text with personal data left in is refused, naming what; the masked proposal passes.
    decide = f"/api/v1/disclosures/{hostile['id']}/decision"
    refused = await offline_api.post(
        decide, json={"decision": "approve", "text": f"已联系 {PHONE}"}, headers=supervisor
    )
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "redaction_failed"
    assert "电话号码" in refused.json()["detail"]["message"] and PHONE not in refused.text
    named = await offline_api.post(decide, json={"decision": "approve", "text": f"{NAME}反映属实"}, headers=supervisor)
    assert named.status_code == 422 and "评价人姓名" in named.json()["detail"]["message"]
    approved = await offline_api.post(decide, json={"decision": "approve"}, headers=supervisor)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    clean = f"/api/v1/disclosures/{by_case[clean_case]['id']}/decision"
    assert (await offline_api.post(clean, json={"decision": "approve"}, headers=supervisor)).status_code == 200
    assert await audit_counts(db, "disclosure.") == {"disclosure.approved": 2}

    page = (await _public(offline_api, "/public/report", id=str(report["id"]))).text
    assert "增开两个窗口" in page and "［身份证号已隐去］" in page and "差评整改情况" in page
    _assert_no_pii(page)
    assert COMMENT not in page
    listing = (await _public(offline_api, "/public")).text
    assert report["title"] in listing
    _assert_no_pii(listing)
    # Staff ranking (people's names) and overdue cases stay off the public page.
    assert "陈窗口" not in page and "工作人员排名" not in page


async def test_review_scope_and_the_review_page(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await small_rules(db)
    await three_months(db)
    await _hostile_case(db)
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    assert (await offline_api.get("/api/v1/disclosures", params={"month": "2025-03"}, headers=staff)).status_code == 403
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    listed = await offline_api.get("/api/v1/disclosures", params={"month": "2025-03"}, headers=admin)
    assert listed.status_code == 200 and len(listed.json()) == 2
    first = listed.json()[0]["id"]
    decision = await offline_api.post(
        f"/api/v1/disclosures/{first}/decision", json={"decision": "withhold"}, headers=admin
    )
    assert decision.status_code == 403  # administrators read; the supervisor above the unit decides
    assert (await page_login(offline_api, "supervisor", demo.passwords["supervisor"])).status_code == 303
    page = await offline_api.get("/disclosures", params={"month": "2025-03"})
    assert page.status_code == 200 and "脱敏检查发现" in page.text and "评价人姓名 2 处" in page.text
    _assert_no_pii(page.text)
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    done = await offline_api.post(
        "/disclosures", data={"csrf": csrf, "id": str(first), "decision": "withhold", "note": "涉及个人信息"}
    )
    assert done.status_code == 303
    assert await audit_counts(db, "disclosure.") == {"disclosure.withheld": 1}


async def test_public_pages_are_rate_limited(
    settings: Settings, db: Database, demo: DemoCredentials, unreachable_temporal: TemporalConnection
) -> None:
    assert "/public" in PUBLIC_PREFIXES
    limited = settings.model_copy(update={"public_rate_limit_per_minute": 3})
    async with api_client(limited, db, unreachable_temporal) as client:
        answers = [(await client.get("/public")).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        assert (await client.get("/public/report", params={"id": "1"})).status_code == 429  # one group for /public…
