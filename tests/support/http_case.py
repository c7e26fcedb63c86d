"""Driving a case through the HTTP API, as the unit's staff would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.db import Database
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import bad_rating, login
from tests.support.services import api_client, running_worker
from tests.support.waiting import eventually

Step = tuple[str, dict[str, object]]

VERIFIED: tuple[Step, ...] = (
    ("accept", {"note": "签收"}),
    ("callbacks", {"reached": True, "note": "已致电"}),
    ("verification", {"verdict": "valid", "findings": "属实", "judgement": "reasonable"}),
)
TO_FEEDBACK: tuple[Step, ...] = (
    *VERIFIED,
    ("rectification", {"measures": "增开窗口"}),
    ("feedback", {"message": "我局已增开窗口"}),
)


async def open_case(
    api: httpx.AsyncClient,
    demo: DemoCredentials,
    staff: dict[str, str],
    timeout: float = 15.0,
    record_no: str = "DEMO-0001",
) -> int:
    """Rate a record badly through intake and wait until its case workflow has started."""
    created = await api.post("/api/v1/ratings", json=bad_rating(record_no), headers={"X-API-Key": demo.api_key})
    assert created.status_code == 201, created.text
    case_id: int = created.json()["case_id"]

    async def started() -> bool:
        return bool((await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()["workflow_started"])

    await eventually(started, timeout=timeout)
    return case_id


async def take_steps(api: httpx.AsyncClient, case_id: int, staff: dict[str, str], steps: tuple[Step, ...]) -> None:
    """Take each (path, body) step in turn; every one must answer 200."""
    for path, body in steps:
        response = await api.post(f"/api/v1/cases/{case_id}/{path}", json=body, headers=staff)
        assert response.status_code == 200, (path, response.text)


@asynccontextmanager
async def case_at_work(
    env: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], int]]:
    """A running worker and API, the unit's staff signed in, and a fresh case of theirs that has started."""
    temporal = TemporalConnection(settings, client=env.client)
    async with running_worker(env.client, settings, db), api_client(settings, db, temporal) as api:
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        yield api, staff, await open_case(api, demo, staff)
