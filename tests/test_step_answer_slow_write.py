"""A step whose timeline write is held up: the API's answer must say what happened to the step.

The case's timeline write runs inside the workflow task that takes the step (a local activity), so a
database that holds the write back also holds back the moment Temporal records the step as accepted.
Here the case row is locked while a clerk logs a callback, for longer than the API waits: whatever the
API answers, the timeline must agree with it — 503 "not taken" and no callback ever, or 202 "accepted"
and exactly one callback, with one audit record.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.db import Database
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import login
from tests.support.http_case import open_case
from tests.support.services import api_client, running_worker
from tests.support.waiting import eventually

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

HELD_FOR = 12.0  # longer than the API waits, and than the workflow task's timeout (10 s)


async def _count(db: Database, query: str, case_id: int) -> int:
    async with db.session() as session:
        return int((await session.exec(sa.text(query).bindparams(id=case_id))).scalar_one())  # type: ignore[call-overload]


CALLBACK_EVENTS = "SELECT count(*) FROM caseevent WHERE case_id = :id AND action = 'callback'"
CALLBACK_AUDITS = "SELECT count(*) FROM auditevent WHERE target_type = 'case' AND target_id = CAST(:id AS VARCHAR) AND action = 'case.callbacks'"


async def test_a_held_write_is_answered_as_it_ends(
    dev_server: WorkflowEnvironment,
    settings: Settings,
    db: Database,
    demo: DemoCredentials,
    locker: AsyncConnection,
) -> None:
    quick = settings.model_copy(update={"case_action_wait_seconds": 2.0})
    temporal = TemporalConnection(quick, client=dev_server.client)
    async with running_worker(dev_server.client, quick, db), api_client(quick, db, temporal) as api:
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        case_id = await open_case(api, demo, staff)
        accepted = await api.post(f"/api/v1/cases/{case_id}/accept", json={}, headers=staff)
        assert accepted.status_code == 200, accepted.text

        await locker.execute(sa.text('SELECT id FROM "case" WHERE id = :id FOR NO KEY UPDATE'), {"id": case_id})
        call = asyncio.create_task(
            api.post(f"/api/v1/cases/{case_id}/callbacks", json={"reached": True, "note": "已联系"}, headers=staff)
        )
        await asyncio.sleep(HELD_FOR)
        await locker.rollback()
        answer = await call

        if answer.status_code == 503:
            assert answer.json()["detail"]["code"] == "not_taken", answer.text
            # Not taken means never: the case takes its next step and the callback stays unwritten.
            again = await api.post(
                f"/api/v1/cases/{case_id}/callbacks", json={"reached": False, "note": "再次致电"}, headers=staff
            )
            assert again.status_code == 200, again.text
            assert await _count(db, CALLBACK_EVENTS, case_id) == 1
            assert await _count(db, CALLBACK_AUDITS, case_id) == 1
        else:
            assert answer.status_code == 202, answer.text

            async def written() -> bool:
                return await _count(db, CALLBACK_EVENTS, case_id) == 1

            await eventually(written, timeout=30)
            assert await _count(db, CALLBACK_AUDITS, case_id) == 1
            check = await api.get(answer.json()["check_url"], headers=staff)
            assert check.status_code == 200 and check.json()["status"] == "completed", check.text
