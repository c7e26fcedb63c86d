"""The review queue of suspicious ratings, API and page, both databases: scope, masking, decisions audited once.

The flags are made by the real detectors: the demo hall system rating its own window transactions on
channels it has no front end for (PC for 市场监管局's, mobile for 人社局's), one pattern each.
"""

from __future__ import annotations

import asyncio

import httpx
from sqlmodel import select

from models.case.records import Case
from models.db import Database
from models.suspicion.records import SuspicionFlag
from runtime.seed import DemoCredentials
from tests.support.http import login
from tests.support.pages import form_csrf, page_login
from tests.support.suspicion import all_ratings, audit_count, flags, rate, rater, ratings_of

PHONE = "13812348000"
RSJ_PASSWORD = "another-long-password"
RSJ_SUPERVISOR = {"username": "rsj_supervisor", "display_name": "人社局 督办", "role": "supervisor", "unit_id": 3,
                  "password": RSJ_PASSWORD}  # fmt: skip
QUEUE = "/api/v1/suspicious-ratings"


async def make_flags(api: httpx.AsyncClient, demo: DemoCredentials) -> tuple[int, int, int]:
    """Flag 1 (市场监管局: two PC ratings, one a bad review with its case), flag 2 (人社局: one mobile rating)."""
    await rate(api, demo, "DEMO-0001", channel="pc", **rater(PHONE))
    bad = await rate(api, demo, "DEMO-0004", channel="pc", level="very_dissatisfied", comment="系统自动差评")
    await rate(api, demo, "DEMO-0003", channel="mobile")
    return 1, 2, bad


async def decide(api: httpx.AsyncClient, headers: dict[str, str], flag_id: int, decision: str = "confirmed",
                 note: str = "核查来源系统日志，确属系统代评") -> httpx.Response:  # fmt: skip
    return await api.post(f"{QUEUE}/{flag_id}/decision", json={"decision": decision, "note": note}, headers=headers)


async def test_each_supervisor_sees_the_flags_of_their_units_masked(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    scj, rsj, _bad = await make_flags(offline_api, demo)
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    assert (await offline_api.post("/api/v1/admin/users", json=RSJ_SUPERVISOR, headers=admin)).status_code == 201
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    rsj_supervisor = await login(offline_api, "rsj_supervisor", RSJ_PASSWORD)

    everything = await offline_api.get(QUEUE, params={"status": "open"}, headers=supervisor)
    assert everything.status_code == 200 and {f["id"] for f in everything.json()["items"]} == {scj, rsj}
    first = next(f for f in everything.json()["items"] if f["id"] == scj)
    assert first["detector"] == "channel_mismatch" and first["unit_id"] == 2 and first["rating_count"] == 2
    assert "「PC端」" in first["reason"] and [r["record_no"] for r in first["ratings"]] == ["DEMO-0004", "DEMO-0001"]
    assert first["ratings"][1]["rater_phone"] == "138****8000" and PHONE not in everything.text
    assert {(r["stage"], r["lead_rating_id"]) for r in first["ratings"]} == {("whole", None)}
    assert {f["id"] for f in (await offline_api.get(QUEUE, headers=admin)).json()["items"]} == {scj, rsj}

    theirs = await offline_api.get(QUEUE, headers=rsj_supervisor)
    assert [f["id"] for f in theirs.json()["items"]] == [rsj] and theirs.json()["total"] == 1
    assert (await decide(offline_api, rsj_supervisor, scj)).status_code == 404
    for username in ("scj_staff", "reviewer"):
        other = await login(offline_api, username, demo.passwords[username])
        assert (await offline_api.get(QUEUE, headers=other)).status_code == 403
        assert (await decide(offline_api, other, scj)).status_code == 403
    assert [f.status for f in await flags(db)] == ["open", "open"] and await audit_count(db, "suspicion.decide") == 0


async def test_a_decision_is_audited_once_and_changes_no_rating_or_case(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    scj, rsj, bad = await make_flags(offline_api, demo)
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    ratings = await all_ratings(db)
    async with db.session() as session:
        case_before = (await session.exec(select(Case).where(Case.rating_id == bad))).one().model_dump()

    for body in ({"decision": "confirmed"}, {"decision": "maybe", "note": "?"}, {"decision": "confirmed", "note": ""},
                 {"decision": "confirmed", "note": "x", "close_case": True}):  # fmt: skip
        assert (await offline_api.post(f"{QUEUE}/{scj}/decision", json=body, headers=supervisor)).status_code == 422
    confirmed = await decide(offline_api, supervisor, scj)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["note"] == "核查来源系统日志，确属系统代评"
    again = await decide(offline_api, admin, scj, "dismissed")
    assert again.status_code == 409 and again.json()["detail"]["code"] == "already_decided"
    assert await audit_count(db, "suspicion.decide") == 1
    logged = (await offline_api.get("/api/v1/audit", params={"action": "suspicion.decide"}, headers=supervisor)).json()
    assert [(e["target_id"], e["unit_id"], e["after"]["status"]) for e in logged["items"]] == [
        (str(scj), 2, "confirmed")
    ]

    # Five reviewers at once on the other flag: one decides it, one audit record.
    answers = await asyncio.gather(
        *(decide(offline_api, h, rsj, "dismissed") for h in [supervisor, admin] * 2 + [admin])
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
    assert await audit_count(db, "suspicion.decide") == 2

    assert await all_ratings(db) == ratings, "a decision changes no rating"
    async with db.session() as session:
        assert (await session.exec(select(Case).where(Case.rating_id == bad))).one().model_dump() == case_before

    # The decided pattern: its ratings stay settled; the system doing it again opens a new flag of the new ones.
    again_made = await rate(offline_api, demo, "DEMO-0007", channel="pc")
    decided, other, new = await flags(db)
    assert (decided.status, decided.open_key) == ("confirmed", None) and await ratings_of(db, new) == {again_made}
    assert new.subject == decided.subject and new.status == "open" and other.status == "dismissed"
    listed = (await offline_api.get(QUEUE, params={"status": "confirmed"}, headers=supervisor)).json()
    assert [f["id"] for f in listed["items"]] == [scj]


async def test_the_page_lists_and_decides_with_its_csrf_token(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    scj, rsj, _bad = await make_flags(offline_api, demo)
    await page_login(offline_api, "supervisor", demo.passwords["supervisor"])
    queue = await offline_api.get("/suspicious")
    assert queue.status_code == 200 and 'href="/suspicious"' in queue.text and "可疑评价" in queue.text
    assert "来源系统 demo-hall 为它自己登记的窗口办件提交了「PC端」渠道的评价" in queue.text
    assert "138****8000" in queue.text and PHONE not in queue.text and "DEMO-0004" in queue.text
    csrf = form_csrf(queue)

    refused = await offline_api.post(f"/suspicious/{scj}/decision", data={"decision": "dismissed", "note": "正常"})
    assert refused.status_code == 403 and "页面已过期" in refused.text
    missing = await offline_api.post(f"/suspicious/{scj}/decision", data={"decision": "dismissed", "csrf": csrf})
    assert missing.status_code == 422 and 'id="flag-1-note-err"' in missing.text and "此项必填" in missing.text
    assert [f.status for f in await flags(db)] == ["open", "open"] and await audit_count(db, "suspicion.decide") == 0

    form = {"decision": "dismissed", "note": "该系统已停用默认评价功能", "csrf": csrf}
    done = await offline_api.post(f"/suspicious/{scj}/decision", data=form)
    assert done.status_code == 303 and done.headers["location"] == "/suspicious?status=open&done=dismissed"
    after = await offline_api.get(done.headers["location"])
    assert (
        "已排除该可疑评价标记" in after.text
        and f'id="flag-{scj}"' not in after.text
        and f'id="flag-{rsj}"' in after.text
    )
    twice = await offline_api.post(f"/suspicious/{scj}/decision", data=form)
    assert twice.status_code == 409 and "已处理" in twice.text
    async with db.session() as session:
        flag = await session.get(SuspicionFlag, scj)
        assert flag is not None and flag.status == "dismissed" and flag.note == "该系统已停用默认评价功能"
    assert await audit_count(db, "suspicion.decide") == 1

    offline_api.cookies.clear()
    await page_login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    staff = await offline_api.get("/suspicious")
    assert staff.status_code == 403 and "只有督办人员和系统管理员可以核查可疑评价" in staff.text
    offline_api.cookies.clear()
