"""Supervisor, reviewer and ledger actions through HTTP, on the dev server: scope checks and error mapping."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.db import Database
from models.organisation import Unit
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import login
from tests.support.http_case import VERIFIED, Step, open_case, take_steps
from tests.support.services import api_client, running_worker
from tests.support.waiting import eventually


async def _verified(api: httpx.AsyncClient, demo: DemoCredentials, staff: dict[str, str], verdict: str) -> int:
    case_id = await open_case(api, demo, staff)
    judgement = "reasonable" if verdict == "valid" else "unreasonable"
    verdict_step: Step = ("verification", {"verdict": verdict, "findings": "核实", "judgement": judgement})
    await take_steps(api, case_id, staff, (*VERIFIED[:2], verdict_step))
    return case_id


async def test_appeal_through_http(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    temporal = TemporalConnection(settings, client=dev_server.client)
    async with running_worker(dev_server.client, settings, db), api_client(settings, db, temporal) as api:
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        reviewer = await login(api, "reviewer", demo.passwords["reviewer"])
        case_id = await _verified(api, demo, staff, "disputed")

        missing = await api.post(
            f"/api/v1/cases/{case_id}/appeal", json={"reason": "误评", "evidence": []}, headers=staff
        )
        assert missing.status_code == 422 and missing.json()["detail"]["errors"][0]["field"] == "evidence"
        filed = await api.post(
            f"/api/v1/cases/{case_id}/appeal", json={"reason": "误评", "evidence": ["窗口录像"]}, headers=staff
        )
        assert filed.status_code == 200 and filed.json()["stage"] == "appeal_review"

        decision = {"upheld": True, "reason": "证据充分"}
        by_staff = await api.post(f"/api/v1/cases/{case_id}/appeal-decision", json=decision, headers=staff)
        assert by_staff.status_code == 403 and by_staff.json()["detail"]["code"] == "not_reviewer"
        # The reviewer sees the appeal case and decides it.
        assert (await api.get(f"/api/v1/cases/{case_id}", headers=reviewer)).status_code == 200
        decided = await api.post(f"/api/v1/cases/{case_id}/appeal-decision", json=decision, headers=reviewer)
        assert decided.status_code == 200 and decided.json()["stage"] == "not_adopted"
        rating = (await api.get(f"/api/v1/ratings/{case_id}", headers={"X-API-Key": demo.api_key})).json()
        assert rating["is_bad"] is True

        # Every decision is in the audit log, with who took it and the stage it led to; refusals are not.
        admin = await login(api, "admin", demo.passwords["admin"])
        log = (await api.get("/api/v1/audit", params={"target_type": "case"}, headers=admin)).json()
        trail = [(i["action"], i["actor"], i["after"]["stage"]) for i in reversed(log["items"])]
        assert trail == [
            ("case.accept", "user:4", "verification"),
            ("case.callbacks", "user:4", "verification"),
            ("case.verification", "user:4", "appeal_filing"),
            ("case.appeal", "user:4", "appeal_review"),
            ("case.appeal-decision", "user:3", "not_adopted"),
        ]


async def test_supervisor_and_ledger_through_http(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with db.session() as session:
        session.add(Unit(code="ELSEWHERE", name="另一市政务服务中心", region_id=1))
        await session.commit()
    temporal = TemporalConnection(settings, client=dev_server.client)
    async with running_worker(dev_server.client, settings, db), api_client(settings, db, temporal) as api:
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        other_staff = await login(api, "rsj_staff", demo.passwords["rsj_staff"])
        supervisor = await login(api, "supervisor", demo.passwords["supervisor"])
        case_id = await _verified(api, demo, staff, "valid")

        detail = (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()
        latest = datetime.fromisoformat(
            next(e for e in detail["timeline"] if e["action"] == "verified")["data"]["ledger_latest_due"]
        )
        too_late = {"due_at": (latest + timedelta(days=2)).isoformat(), "plan": "大厅改造"}
        refused = await api.post(f"/api/v1/cases/{case_id}/ledger", json=too_late, headers=staff)
        assert refused.status_code == 422 and refused.json()["detail"]["code"] == "invalid_input"
        assert "不得晚于" in refused.json()["detail"]["message"]
        naive = await api.post(
            f"/api/v1/cases/{case_id}/ledger", json={"due_at": "2026-12-01T10:00:00", "plan": "x"}, headers=staff
        )
        assert naive.status_code == 422

        assert (
            await api.post(f"/api/v1/cases/{case_id}/reminders", json={"message": "请加快"}, headers=staff)
        ).status_code == 403
        assert (
            await api.post(f"/api/v1/cases/{case_id}/reminders", json={"message": "请加快"}, headers=supervisor)
        ).status_code == 200

        unknown = await api.post(
            f"/api/v1/cases/{case_id}/reassignment", json={"to_unit_id": 999, "reason": "x"}, headers=supervisor
        )
        assert unknown.status_code == 422 and unknown.json()["detail"]["field"] == "to_unit_id"
        outside = await api.post(
            f"/api/v1/cases/{case_id}/reassignment", json={"to_unit_id": 4, "reason": "x"}, headers=supervisor
        )
        assert outside.status_code == 403
        moved = await api.post(
            f"/api/v1/cases/{case_id}/reassignment",
            json={"to_unit_id": 3, "reason": "属人社局职责"},
            headers=supervisor,
        )
        assert moved.status_code == 200 and moved.json()["unit_id"] == 3 and moved.json()["stage"] == "assigned"

        async def moved_in_read_model() -> bool:
            return (await api.get(f"/api/v1/cases/{case_id}", headers=other_staff)).status_code == 200

        await eventually(moved_in_read_model)
        assert (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).status_code == 404
        again = await api.post(f"/api/v1/cases/{case_id}/accept", json={}, headers=other_staff)
        assert again.status_code == 200
