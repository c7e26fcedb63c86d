"""The loadable working-day calendar, and recomputing provisional deadlines when a year is loaded."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.calendar import LoadedCalendar
from models.case.step_inputs import AcceptInput
from models.db import Database
from models.deadlines import CHINA_TZ, DeadlineSpec, compute_due
from models.policy import DeadlineName
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.case_driver import SCJ_STAFF, CaseDriver
from tests.support.db import case_row
from tests.support.http import login
from tests.support.services import api_client, running_worker
from workflows.case import CaseWorkflow

NEW_YEAR_2027 = {
    "holidays": ["2027-01-01"],
    "workdays": [],
    "source": "国务院办公厅关于2027年部分节假日安排的通知（测试数据）",
}


def test_a_loaded_year_overrides_weekends_only_and_is_official() -> None:
    calendar = LoadedCalendar({2027: ({date(2027, 1, 1)}, {date(2027, 2, 6)})})
    assert calendar.is_workday(date(2027, 1, 1)) == (False, True)
    assert calendar.is_workday(date(2027, 2, 6)) == (True, True)  # a 调休 Saturday
    assert calendar.is_workday(date(2027, 1, 4)) == (True, True)
    start = datetime(2026, 12, 31, 9, 0, tzinfo=CHINA_TZ)
    due = compute_due(start, DeadlineSpec.parse("1wd"), calendar)
    assert due.at == datetime(2027, 1, 5, tzinfo=CHINA_TZ) and not due.provisional


async def test_calendar_api(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    y2026 = (await offline_api.get("/api/v1/calendar/2026", headers=staff)).json()
    assert y2026["official"] and "2026-10-01" in y2026["holidays"] and "2026-10-10" in y2026["workdays"]
    assert not (await offline_api.get("/api/v1/calendar/2027", headers=staff)).json()["official"]

    assert (await offline_api.put("/api/v1/calendar/2027", json=NEW_YEAR_2027, headers=staff)).status_code == 403
    outside = {**NEW_YEAR_2027, "holidays": ["2026-12-31"]}
    response = await offline_api.put("/api/v1/calendar/2027", json=outside, headers=admin)
    assert response.status_code == 422 and "2026-12-31" in response.text
    weekday_workday = {**NEW_YEAR_2027, "workdays": ["2027-01-04"]}
    assert (await offline_api.put("/api/v1/calendar/2027", json=weekday_workday, headers=admin)).status_code == 422

    loaded = await offline_api.put("/api/v1/calendar/2027", json=NEW_YEAR_2027, headers=admin)
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["cases_recomputed"] == 0
    y2027 = (await offline_api.get("/api/v1/calendar/2027", headers=staff)).json()
    assert y2027["official"] and y2027["holidays"] == ["2027-01-01"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_loading_next_year_recomputes_provisional_deadlines_of_open_cases(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
) -> None:
    # Move the test server's clock to 30 December 2026: a 2-working-day verification deadline reaches
    # into 2027, a year chinese-calendar 1.11 has no table for.
    now = await time_skipping.get_current_time()
    target = datetime(2026, 12, 30, 10, 0, tzinfo=CHINA_TZ)
    if now < target:
        await time_skipping.sleep(target - now)
    async with running_worker(time_skipping.client, settings, db):
        case = await CaseDriver.open(time_skipping, offline_api, demo, db, settings)
        state = await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
        verification = state.deadline(DeadlineName.VERIFICATION)
        assert verification is not None and verification.provisional
        # Weekends only: 31 Dec and Friday 1 Jan 2027 are counted as working days.
        assert verification.due_at == datetime(2027, 1, 2, tzinfo=CHINA_TZ)
        assert (await case_row(db, case.case_id)).has_provisional_deadline

        async with api_client(settings, db, TemporalConnection(settings, client=time_skipping.client)) as api:
            admin = await login(api, "admin", demo.passwords["admin"])
            loaded = await api.put("/api/v1/calendar/2027", json=NEW_YEAR_2027, headers=admin)
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["cases_recomputed"] == 1 and loaded.json()["cases_failed"] == []

        state = await case.state()
        verification = state.deadline(DeadlineName.VERIFICATION)
        assert verification is not None and not verification.provisional
        # 1 January is a holiday, 2–3 January a weekend: the second working day is Monday 4 January.
        assert verification.due_at == datetime(2027, 1, 5, tzinfo=CHINA_TZ)
        assert "deadline_recomputed" in await case.actions()
        assert not (await case_row(db, case.case_id)).has_provisional_deadline
        assert verification.due_at - datetime(2027, 1, 2, tzinfo=CHINA_TZ) == timedelta(days=3)
