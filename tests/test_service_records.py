"""Business systems register transactions with an API key."""

from __future__ import annotations

import httpx

from runtime.seed import DEMO_SOURCE_SYSTEM, DemoCredentials

RECORD = {
    "record_no": "YT-2026-000777",
    "item_code": "370600-XK-0001",
    "unit_code": "YT-SCJ",
    "staff_no": "SCJ-001",
    "applicant_type": "legal_person",
    "service_channel": "window",
    "completed_at": "2026-11-20T10:30:00+08:00",
}


async def test_register_record(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    response = await offline_api.post("/api/v1/service-records", json=RECORD, headers={"X-API-Key": demo.api_key})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["record_no"] == RECORD["record_no"] and body["staff_no"] == "SCJ-001"
    assert body["source_system"] == DEMO_SOURCE_SYSTEM

    again = await offline_api.post("/api/v1/service-records", json=RECORD, headers={"X-API-Key": demo.api_key})
    assert again.status_code == 409


async def test_register_record_errors_name_the_field(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    headers = {"X-API-Key": demo.api_key}
    cases = [
        ({"item_code": "NOPE"}, "item_code"),
        ({"unit_code": "NOPE"}, "unit_code"),
        ({"staff_no": "RSJ-001"}, "staff_no"),  # staff of another unit
        ({"service_channel": "online"}, "staff_no"),  # online records rate the item only
        ({"completed_at": "2026-11-20T10:30:00"}, "completed_at"),
    ]
    for change, field in cases:
        response = await offline_api.post("/api/v1/service-records", json={**RECORD, **change}, headers=headers)
        assert response.status_code == 422, (change, response.text)
        assert response.json()["detail"]["field"] == field


async def test_register_record_needs_api_key(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    response = await offline_api.post("/api/v1/service-records", json=RECORD)
    assert response.status_code == 401
    # A staff token is not a business-system key.
    token = (
        await offline_api.post("/api/v1/auth/token", data={"username": "admin", "password": demo.passwords["admin"]})
    ).json()["access_token"]
    response = await offline_api.post(
        "/api/v1/service-records", json=RECORD, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
