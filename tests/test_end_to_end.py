"""From a registered transaction to a closed case, through the API, on the Temporal dev server.

Runs on SQLite and PostgreSQL. Also proves that no rater PII reaches the workflow history.
"""

from __future__ import annotations

import re
from typing import Any

from temporalio.testing import WorkflowEnvironment

from config import Settings
from models import search_attributes
from models.db import Database
from models.outbox import OutboxEntry
from runtime.mail_sink import MailSink, message_text
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.pii_scan import find_in_history
from tests.support.db import case_events
from tests.support.http import RATER, answer_link, bad_rating, login
from tests.support.services import api_client, running_worker
from tests.support.unrated import completed_recently
from tests.support.waiting import delivered, eventually

RECORD = {
    "record_no": "YT-2026-E2E-0001",
    "item_code": "370600-XK-0001",
    "unit_code": "YT-SCJ",
    "staff_no": "SCJ-001",
    "applicant_type": "individual",
    "service_channel": "window",
    "completed_at": completed_recently(),
}
FEEDBACK = "经核实，当日窗口人手不足。我局已增开两个企业登记窗口，并推行预约办理。"


async def test_rating_to_closed_case_with_feedback_mail(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials, mailbox: MailSink
) -> None:
    temporal = TemporalConnection(settings, client=dev_server.client)
    async with running_worker(dev_server.client, settings, db), api_client(settings, db, temporal) as api:
        system = {"X-API-Key": demo.api_key}
        assert (await api.post("/api/v1/service-records", json=RECORD, headers=system)).status_code == 201
        accepted = await api.post("/api/v1/ratings", json=bad_rating(RECORD["record_no"]), headers=system)
        assert accepted.status_code == 201, accepted.text
        case_id = accepted.json()["case_id"]

        # The fast path started the workflow: the outbox row is already dispatched.
        async with db.session() as session:
            outbox = await session.get(OutboxEntry, 1)
            assert outbox is not None and outbox.dispatched_at is not None

        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        inbox = (await api.get("/api/v1/cases", headers=staff)).json()
        assert [c["id"] for c in inbox["items"]] == [case_id]

        async def started() -> bool:
            return (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()["workflow_started"]

        await eventually(started)

        async def act(path: str, body: dict[str, object], expected_stage: str, key: str | None = None) -> None:
            headers = {**staff, "Idempotency-Key": key} if key else staff
            response = await api.post(f"/api/v1/cases/{case_id}/{path}", json=body, headers=headers)
            assert response.status_code == 200, (path, response.text)
            assert response.json()["stage"] == expected_stage

        await act("accept", {"note": "已签收"}, "verification")
        await act("callbacks", {"reached": False, "note": "第一次致电未接通"}, "verification")
        reached = {"reached": True, "note": "已致电评价人，说明情况并致歉"}
        await act("callbacks", reached, "verification", key="click-7c1e")
        # A retried click (same Idempotency-Key) acts once: the timeline below has two callbacks, not three.
        await act("callbacks", reached, "verification", key="click-7c1e")
        await act(
            "verification",
            {"verdict": "valid", "findings": "当日窗口仅开放一个，排队过长属实", "judgement": "reasonable"},
            "rectification",
        )
        # A step out of order is refused with the validator's reason.
        early = await api.post(f"/api/v1/cases/{case_id}/feedback", json={"message": "x"}, headers=staff)
        assert early.status_code == 409 and "反馈" in early.json()["detail"]["message"]
        await act("rectification", {"measures": "增开两个窗口，推行预约办理"}, "feedback")
        await act("feedback", {"message": FEEDBACK}, "feedback")

        # The rater gets the result with a one-time link, answers "satisfied", and the case closes.
        async def awaiting_rater() -> bool:
            return (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()["stage"] == "rater_response"

        await eventually(awaiting_rater)
        mails = await delivered(mailbox, RATER["email"])
        assert len(mails) == 1
        text = message_text(mails[0])
        assert FEEDBACK in text and text.startswith(RATER["name"])
        link = re.search(r"http://\S+/r/(\S+)", text)
        assert link is not None
        page = await api.get(f"/r/{link.group(1)}")
        assert page.status_code == 200 and FEEDBACK in page.text and "满意" in page.text
        answered = await answer_link(api, link.group(1), True, "很快就改了", page=page)
        assert answered.status_code == 200 and "感谢" in answered.text
        again = await api.get(f"/r/{link.group(1)}")
        assert again.status_code == 410 and "已使用" in again.text

        async def closed() -> dict[str, Any] | None:
            detail = (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()
            return detail if detail["stage"] == "closed" else None

        detail = await eventually(closed)
        handle = dev_server.client.get_workflow_handle(detail["workflow_id"])
        history = await handle.fetch_history()

        # Operators can filter cases in the Temporal UI by stage, unit, overdue and rung.
        indexed = (await handle.describe()).typed_search_attributes
        assert indexed.get(search_attributes.CASE_STAGE) == "closed"
        assert indexed.get(search_attributes.CASE_UNIT) == 2
        assert indexed.get(search_attributes.CASE_OVERDUE) is False
        assert indexed.get(search_attributes.CASE_ESCALATION_RUNG) == 0

        async def listed() -> list[str]:
            query = f"HcpUnitId = 2 AND HcpStage = 'closed' AND TaskQueue = '{settings.temporal_task_queue}'"
            return [wf.id async for wf in dev_server.client.list_workflows(query)]

        assert await eventually(listed) == [handle.id]

    assert detail["outcome"] == "satisfied" and detail["policy_code"] == "yantai"
    assert [(a["round"], a["satisfied"], a["comment"]) for a in detail["rater_answers"]] == [(1, True, "很快就改了")]
    assert {d["name"]: d["state"] for d in detail["deadlines"]} == {
        "verification": "met",
        "callback": "met",
        "rectification_immediate": "met",
        "feedback": "met",
    }

    # The timeline in the database lists every step, with who did it.
    expected = [
        ("opened", "system"),
        ("accepted", "user:4"),
        ("callback", "user:4"),
        ("callback", "user:4"),
        ("verified", "user:4"),
        ("rectified", "user:4"),
        ("feedback_written", "user:4"),
        ("feedback_sent", "system"),
        ("rater_responded", "rater"),
        ("closed", "system"),
    ]
    assert [(e["action"], e["actor"]) for e in detail["timeline"]] == expected
    assert [(e.action, e.actor) for e in await case_events(db, case_id)] == expected
    assert detail["closed_at"] is not None and not detail["overdue"]

    # No rater PII in the workflow history; the control proves the scan reads decoded payloads.
    assert find_in_history(history, [FEEDBACK]) == [FEEDBACK]
    assert find_in_history(history, [RATER["name"], RATER["phone"], RATER["email"]]) == []


async def test_other_units_staff_cannot_see_or_act(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    temporal = TemporalConnection(settings, client=dev_server.client)
    async with running_worker(dev_server.client, settings, db), api_client(settings, db, temporal) as api:
        accepted = await api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
        case_id = accepted.json()["case_id"]
        other = await login(api, "rsj_staff", demo.passwords["rsj_staff"])
        assert (await api.get(f"/api/v1/cases/{case_id}", headers=other)).status_code == 404
        assert (await api.post(f"/api/v1/cases/{case_id}/accept", json={}, headers=other)).status_code == 404
        assert (await api.get("/api/v1/cases", headers=other)).json()["total"] == 0

        supervisor = await login(api, "supervisor", demo.passwords["supervisor"])
        assert (await api.get(f"/api/v1/cases/{case_id}", headers=supervisor)).status_code == 200
        # Supervisors watch cases; the unit handles them.
        assert (await api.post(f"/api/v1/cases/{case_id}/accept", json={}, headers=supervisor)).status_code == 403

        reviewer = await login(api, "reviewer", demo.passwords["reviewer"])
        # Reviewers see only cases on the appeal path.
        assert (await api.get("/api/v1/cases", headers=reviewer)).json()["total"] == 0
        assert (await api.get(f"/api/v1/cases/{case_id}", headers=reviewer)).status_code == 404
        assert (await api.post(f"/api/v1/cases/{case_id}/accept", json={})).status_code == 401
