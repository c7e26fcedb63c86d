"""A rater's data export (个人信息查阅、复制): the admin finds one rater by phone, gets all of theirs and nothing else.

Audited with the reason and without the phone; refused to every other role; after the retention job
the same request finds nothing (the phone's keyed hash is gone).
"""

from __future__ import annotations

import io

import httpx
from sqlmodel import select

from config import Settings
from models.audit import AuditEvent
from models.db import Database, utcnow
from runtime.retention import run_now
from runtime.seed import DemoCredentials
from tests.support.http import login
from tests.support.retention_data import build

URL = "/api/v1/admin/rater-data/export"
REASON = "评价人申请查阅个人信息（申请编号 2026-001）"


async def test_the_export_holds_the_raters_own_data_only_and_nothing_once_anonymised(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient
) -> None:
    now = utcnow()
    data = await build(db, settings, now, each=1)
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    due = data.of("closed_old")[0]
    kept = data.of("appeal_review_old")[0]

    for rater in (due, kept):
        # Written another way (+86, dashes): the same person.
        asked = f"+86 {rater.phone[:3]}-{rater.phone[3:7]}-{rater.phone[7:]}"
        response = await offline_api.post(URL, json={"phone": asked, "reason": REASON}, headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["rating_id"] for r in body["ratings"]] == [rater.rating_id]
        rating = body["ratings"][0]
        assert (rating["name"], rating["phone"], rating["email"]) == (rater.name, rater.phone, rater.email)
        assert rating["applicant_phone"] == rater.phone and rating["anonymised"] == ""
        case = rating["case"]
        assert case["case_id"] == rater.case_id
        steps = [step["step"] for step in case["timeline"]]
        assert steps[:2] == ["已受理", "已核实"] and "办理结果已反馈" in steps
        assert f"{rater.name}您好，已增开窗口" in [step["message"] for step in case["timeline"]]
        assert (
            "核对身份证" not in response.text and "反映属实" not in response.text
        )  # staff's notes are not the rater's
        assert [n["kind"] for n in case["notices"]] == ["feedback"] and case["answers"][0]["satisfied"] is True
        others = [r for r in data.raters if r is not rater]
        assert all(o.phone not in response.text and o.name not in response.text for o in others)

    # Audited: who, why, which ratings; never the phone.
    async with db.session() as session:
        rows = (await session.exec(select(AuditEvent).where(AuditEvent.action == "pii.export"))).all()
    assert len(rows) == 2 and all(row.reason == REASON and row.actor_role == "admin" for row in rows)
    assert [row.after["ratings"] for row in rows] == [[due.rating_id], [kept.rating_id]]
    assert all(due.phone not in repr((r.target_id, r.after)) and kept.phone not in repr(r.after) for r in rows)

    # Refused to every other role, and to a phone-less or reason-less request.
    for username in ("scj_staff", "supervisor", "reviewer"):
        other = await login(offline_api, username, demo.passwords[username])
        refused = await offline_api.post(URL, json={"phone": due.phone, "reason": REASON}, headers=other)
        assert refused.status_code == 403, username
    assert (await offline_api.post(URL, json={"phone": due.phone, "reason": REASON})).status_code == 401
    assert (await offline_api.post(URL, json={"phone": "abc", "reason": REASON}, headers=admin)).status_code == 422
    assert (await offline_api.post(URL, json={"phone": due.phone}, headers=admin)).status_code == 422

    # After the retention job the anonymised rater is found no more; the kept one still is.
    await run_now(db, settings, now, io.StringIO())
    gone = await offline_api.post(URL, json={"phone": due.phone, "reason": REASON}, headers=admin)
    assert gone.status_code == 200 and gone.json()["ratings"] == []
    still = await offline_api.post(URL, json={"phone": kept.phone, "reason": REASON}, headers=admin)
    assert [r["rating_id"] for r in still.json()["ratings"]] == [kept.rating_id]
