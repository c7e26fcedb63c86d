"""The verification records the unit's judgement of the review (合理 / 部分合理 / 不合理) and its evidence.

Through the API on the Temporal dev server, on both databases: the judgement is required, must agree
with the verdict (only a reasonable or partly reasonable review is rectified), and the timeline's
"verified" event carries it with the evidence.
"""

from __future__ import annotations

from typing import Any

from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.http_case import VERIFIED, case_at_work, take_steps
from tests.support.waiting import eventually

EVIDENCE = ["当日叫号记录：仅开放一个窗口", "《烟台市政务服务事项办事指南》第3条"]


async def test_verification_needs_a_judgement_that_agrees_with_the_verdict(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with case_at_work(dev_server, settings, db, demo) as (api, staff, case_id):
        await take_steps(api, case_id, staff, VERIFIED[:2])  # accepted, rater called back
        url = f"/api/v1/cases/{case_id}/verification"

        # No judgement: refused before the workflow sees anything, naming the field.
        missing = await api.post(url, json={"verdict": "valid", "findings": "属实"}, headers=staff)
        assert missing.status_code == 422, missing.text
        assert missing.json()["detail"]["field"] == "judgement"

        # A valid review (rectified) cannot be judged unreasonable: the reason says what to give instead.
        body = {"verdict": "valid", "findings": "属实", "judgement": "unreasonable"}
        disagrees = await api.post(url, json=body, headers=staff)
        assert disagrees.status_code == 422, disagrees.text
        message = " ".join(e["message"] for e in disagrees.json()["detail"]["errors"])
        assert "'unreasonable'" in message and "'reasonable'" in message and "'partly_reasonable'" in message
        assert "no_legal_basis" in message and "disputed" in message

        # Evidence items are bounded like an appeal's.
        too_many = {"verdict": "no_legal_basis", "findings": "x", "judgement": "unreasonable", "evidence": ["e"] * 21}
        assert (await api.post(url, json=too_many, headers=staff)).status_code == 422
        empty_item = {"verdict": "no_legal_basis", "findings": "x", "judgement": "unreasonable", "evidence": [""]}
        assert (await api.post(url, json=empty_item, headers=staff)).json()["detail"]["field"] == "evidence.0"
        detail = (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()
        assert detail["stage"] == "verification"
        assert "verified" not in [e["action"] for e in detail["timeline"]]

        # No legal basis, judged unreasonable, with evidence: taken, and the timeline records both.
        explained: dict[str, object] = {
            "verdict": "no_legal_basis",
            "findings": "诉求无政策依据",
            "judgement": "unreasonable",
            "evidence": EVIDENCE,
        }
        taken = await api.post(url, json=explained, headers=staff)
        assert taken.status_code == 200, taken.text
        assert taken.json()["stage"] == "explanation"

        async def verified() -> dict[str, Any] | None:
            timeline = (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()["timeline"]
            return next((e for e in timeline if e["action"] == "verified"), None)

        event = await eventually(verified)
    assert event["data"]["verdict"] == "no_legal_basis"
    assert event["data"]["judgement"] == "unreasonable"
    assert event["data"]["evidence"] == EVIDENCE
