"""The case read model: filters, pagination and scope of GET /api/v1/cases (SQL only, no Temporal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from models.case.records import Case
from models.case.vocabulary import Outcome, Stage
from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating, login


async def _cases(api: httpx.AsyncClient, demo: DemoCredentials, records: list[str]) -> list[int]:
    ids = []
    for record_no in records:
        response = await api.post("/api/v1/ratings", json=bad_rating(record_no), headers={"X-API-Key": demo.api_key})
        assert response.status_code == 201
        ids.append(response.json()["case_id"])
    return ids


async def _set(db: Database, case_id: int, **columns: object) -> None:
    async with db.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        for name, value in columns.items():
            setattr(case, name, value)
        session.add(case)
        await session.commit()


async def test_filters_and_pagination(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    # DEMO-0001/0002/0004/0005 belong to 市场监管局 (unit 2), DEMO-0003 to 人社局 (unit 3).
    a, b, c, d, other = await _cases(
        offline_api, demo, ["DEMO-0001", "DEMO-0002", "DEMO-0004", "DEMO-0005", "DEMO-0003"]
    )
    soon = datetime(2026, 12, 1, tzinfo=UTC)
    await _set(db, a, stage=Stage.VERIFICATION, overdue=True, escalation_rung=2, next_due_at=soon)
    await _set(db, b, stage=Stage.RECTIFICATION, overdue=True, escalation_rung=1, next_due_at=soon + timedelta(days=5))
    await _set(db, c, stage=Stage.CLOSED, outcome=Outcome.SATISFIED, round=2, closed_at=soon)
    await _set(db, d, stage=Stage.NOT_ADOPTED, outcome=Outcome.NOT_ADOPTED, closed_at=soon)

    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])

    async def ids(**params: str | int) -> list[int]:
        response = await offline_api.get("/api/v1/cases", params=params, headers=staff)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert sorted(await ids()) == sorted([a, b, c, d])  # never the other unit's
    assert sorted(await ids(status="open")) == sorted([a, b])
    assert sorted(await ids(status="finished")) == sorted([c, d])
    assert await ids(stage="rectification") == [b]
    assert sorted(await ids(overdue="true")) == sorted([a, b])
    assert await ids(escalation_rung=2) == [a]
    assert sorted(await ids(escalation_rung=1)) == sorted([a, b])
    assert await ids(due_before="2026-12-03T00:00:00+08:00") == [a]
    assert await ids(round=2) == [c]
    assert await ids(unit_id=3) == []

    page = (await offline_api.get("/api/v1/cases", params={"limit": 2, "offset": 2}, headers=staff)).json()
    assert page["total"] == 4 and len(page["items"]) == 2 and page["limit"] == 2

    bad = await offline_api.get("/api/v1/cases", params={"due_before": "2026-12-03T00:00:00"}, headers=staff)
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "due_before"
    assert (await offline_api.get("/api/v1/cases", params={"stage": "nope"}, headers=staff)).status_code == 422

    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    everything = (await offline_api.get("/api/v1/cases", headers=supervisor)).json()
    assert everything["total"] == 5  # the management office supervises both units

    detail = (await offline_api.get(f"/api/v1/cases/{a}", headers=staff)).json()
    assert detail["escalation_rung"] == 2 and detail["overdue"] and detail["policy_code"] == "yantai"
    assert detail["rater"] == {"real_name": True, "name": "张**", "phone": "139****5678", "email": "z***@example.com"}
    assert (await offline_api.get(f"/api/v1/cases/{other}", headers=staff)).status_code == 404
