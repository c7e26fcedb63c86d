"""worker.py itself pushes upstream: killed (SIGKILL) after a push reached the platform and before it was
recorded, started again, and the platform still counts the rating once; the case's result follows.

Runs worker.py as a real process with its upstream relay configured by environment variables, the
crash point `upstream.after_send` (activities/faults.py), the API in-process and the test platform
on a real port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx
import pytest
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from activities.faults import CRASH_POINT_ENV
from config import PROJECT_ROOT, Settings
from models.db import Database
from models.upstream import PushKind, PushStatus, UpstreamPush
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import bad_rating, login
from tests.support.http_case import Step, take_steps
from tests.support.services import api_client
from tests.support.upstream import FakeUpstream, fake_upstream, reporting_to
from tests.support.waiting import eventually

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def _start_worker(
    dev_server: WorkflowEnvironment, settings: Settings, upstream: FakeUpstream, crash_at: str | None
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "HCP_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "HCP_DATABASE_URL": settings.sqlalchemy_url,
        "HCP_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "HCP_WORKFLOW_ID_PREFIX": settings.workflow_id_prefix,
        "HCP_PII_KEYS": settings.pii_keys,
        "HCP_DATA_DIR": str(settings.data_dir),
        "HCP_SMTP_PORT": str(settings.smtp_port),
        "HCP_UPSTREAM_URL": upstream.url,
        "HCP_UPSTREAM_TOKEN": upstream.token,
        "HCP_UPSTREAM_RELAY_INTERVAL_SECONDS": "0.2",
        "HCP_UPSTREAM_LEASE_SECONDS": "2",
        "HCP_UPSTREAM_BACKOFF_SECONDS": "0.2",
    }
    env.pop(CRASH_POINT_ENV, None)
    if crash_at:
        env[CRASH_POINT_ENV] = crash_at
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=PROJECT_ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    seen = b""
    while b"worker polling" not in seen:
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=60)
        assert line, f"worker exited early: {seen.decode()}"
        seen += line
    return proc


async def _pushes(db: Database) -> list[UpstreamPush]:
    async with db.session() as session:
        return list((await session.exec(select(UpstreamPush).order_by(col(UpstreamPush.id)))).all())


async def test_worker_killed_between_a_push_and_its_record_reports_once(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with fake_upstream() as upstream:
        reporting = reporting_to(settings, upstream)
        temporal = TemporalConnection(reporting, client=dev_server.client)
        worker = await _start_worker(dev_server, reporting, upstream, "upstream.after_send")
        output = b""
        try:
            async with api_client(reporting, db, temporal) as api:
                staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
                # An anonymous bad review: nobody to tell, so the case closes with the unit's feedback.
                body = bad_rating("DEMO-0001", real_name=False, rater=None)
                created = await api.post("/api/v1/ratings", json=body, headers={"X-API-Key": demo.api_key})
                assert created.status_code == 201, created.text
                case_id = created.json()["case_id"]

                # The platform got the rating; the worker died before recording that it had.
                assert await asyncio.wait_for(worker.wait(), timeout=60) == -signal.SIGKILL
                assert worker.stderr is not None
                output += await worker.stderr.read()
                assert len(upstream.requests) == 1 and len(upstream.recorded) == 1
                [push] = await _pushes(db)
                assert push.status == PushStatus.SENDING

                worker = await _start_worker(dev_server, reporting, upstream, None)

                async def rating_delivered() -> UpstreamPush | None:
                    rows = await _pushes(db)
                    return rows[0] if rows and rows[0].status == PushStatus.DELIVERED else None

                push = await eventually(rating_delivered, timeout=30)
                assert push.attempts == 2
                assert [r.key for r in upstream.requests] == [push.push_key] * 2 and len(upstream.recorded) == 1

                # The restarted worker also reports the case's result when the unit closes it.
                await eventually(lambda: _started(api, case_id, staff), timeout=30)
                # The dead worker held the case's sticky task queue: until Temporal gives up on it (about
                # 5 s) a step may answer 503 "not taken" (docs/decisions/0007, safe to repeat) or 202.
                await eventually(lambda: _accepted(api, case_id, staff), timeout=30, interval=0.5)
                steps: tuple[Step, ...] = (
                    ("verification", {"verdict": "valid", "findings": "属实", "judgement": "reasonable"}),
                    ("rectification", {"measures": "增开窗口"}),
                    ("feedback", {"message": "已增开窗口"}),
                )
                await take_steps(api, case_id, staff, steps)

                async def result_delivered() -> list[UpstreamPush]:
                    rows = await _pushes(db)
                    return rows if len(rows) == 2 and all(p.status == PushStatus.DELIVERED for p in rows) else []

                rows = await eventually(result_delivered, timeout=30)
                assert (rows[1].kind, rows[1].subject_id) == (PushKind.CASE_RESULT, case_id)
                assert list(upstream.recorded) == [rows[0].push_key, rows[1].push_key]
                assert len(upstream.requests) == 3
        finally:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
                assert worker.stderr is not None
                output += await asyncio.wait_for(worker.stderr.read(), timeout=60)
                await worker.wait()
    # The worker says what it pushed by id and outcome only.
    assert "delivered" in output.decode()


async def _accepted(api: httpx.AsyncClient, case_id: int, staff: dict[str, str]) -> bool:
    """签收 taken: 200, or 202 (taken, finishing) once the case has moved on; False on 503 (not taken)."""
    response = await api.post(f"/api/v1/cases/{case_id}/accept", json={"note": "签收"}, headers=staff)
    assert response.status_code in (200, 202, 503), response.text
    if response.status_code == 202:

        async def moved_on() -> bool:
            case = await api.get(f"/api/v1/cases/{case_id}", headers=staff)
            return bool(case.json()["stage"] == "verification")

        await eventually(moved_on, timeout=30)
    return response.status_code != 503


async def _started(api: httpx.AsyncClient, case_id: int, staff: dict[str, str]) -> bool:
    return bool((await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()["workflow_started"])
