"""Rating intake on SQLite and PostgreSQL: validation, duplicates, idempotency, case creation, outbox."""

from __future__ import annotations

import httpx
from sqlmodel import func, select

from models.case.records import Case
from models.db import Database
from models.outbox import OutboxEntry
from models.ratings import Rating
from runtime.seed import DemoCredentials
from tests.support.http import RATER, bad_rating, login


def key(demo: DemoCredentials) -> dict[str, str]:
    return {"X-API-Key": demo.api_key}


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_good_rating_opens_no_case(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    response = await offline_api.post(
        "/api/v1/ratings", json={"record_no": "DEMO-0002", "level": "satisfied", "channel": "mobile"}, headers=key(demo)
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"rating_id": 1, "is_bad": False, "case_id": None, "covered": []}
    assert await count(db, Case) == 0
    assert await count(db, OutboxEntry) == 0


async def test_bad_rating_opens_case_with_outbox_row(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    response = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers=key(demo))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["is_bad"] is True and body["case_id"] is not None
    async with db.session() as session:
        case = await session.get(Case, body["case_id"])
        assert case is not None and case.rating_id == body["rating_id"]
        assert case.workflow_id.endswith(f"case-rating-{body['rating_id']}")
        outbox = (await session.exec(select(OutboxEntry))).one()
        # Temporal is unreachable here, so the row waits for the relay, and it carries no PII.
        assert outbox.dispatched_at is None
        assert outbox.payload["workflow_id"] == case.workflow_id
        assert outbox.payload["input"]["case_id"] == case.id
        for value in RATER.values():
            assert value not in str(outbox.payload)


async def test_dissatisfied_is_bad_and_basically_satisfied_is_not(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    r1 = await offline_api.post(
        "/api/v1/ratings", json=bad_rating("DEMO-0003", level="dissatisfied"), headers=key(demo)
    )
    r2 = await offline_api.post(
        "/api/v1/ratings", json=bad_rating("DEMO-0004", level="basically_satisfied"), headers=key(demo)
    )
    assert r1.json()["is_bad"] is True
    assert r2.json()["is_bad"] is False and r2.json()["case_id"] is None


async def test_unknown_record_is_404(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    response = await offline_api.post("/api/v1/ratings", json=bad_rating("NO-SUCH-RECORD"), headers=key(demo))
    assert response.status_code == 404
    assert response.json()["detail"]["field"] == "record_no"


async def test_invalid_level_and_channel_name_the_field(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    response = await offline_api.post("/api/v1/ratings", json=bad_rating(level="terrible"), headers=key(demo))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]["errors"]] == ["level"]
    response = await offline_api.post("/api/v1/ratings", json=bad_rating(channel="fax"), headers=key(demo))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]["errors"]] == ["channel"]


async def test_validation_errors_do_not_echo_pii(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    body = bad_rating(rater={"name": "李四", "phone": "not-a-phone-1390000", "email": "lisi@example.com"})
    response = await offline_api.post("/api/v1/ratings", json=body, headers=key(demo))
    assert response.status_code == 422
    assert "not-a-phone-1390000" not in response.text and "lisi@example.com" not in response.text


async def test_real_name_rating_needs_contact(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    response = await offline_api.post("/api/v1/ratings", json=bad_rating(rater=None), headers=key(demo))
    assert response.status_code == 422
    assert "real-name" in response.text


async def test_second_rating_of_same_target_is_409(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    first = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers=key(demo))
    assert first.status_code == 201
    second = await offline_api.post("/api/v1/ratings", json=bad_rating(level="satisfied"), headers=key(demo))
    assert second.status_code == 409
    assert second.json()["detail"]["code"] == "already_rated"
    # The staff member of the same window transaction is a different target and may be rated.
    staff = await offline_api.post("/api/v1/ratings", json=bad_rating(target="staff"), headers=key(demo))
    assert staff.status_code == 201
    assert await count(db, Rating) == 2
    assert await count(db, Case) == 2


async def test_staff_target_needs_a_window_record(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    # DEMO-0002 is an online transaction: only the item can be rated.
    response = await offline_api.post(
        "/api/v1/ratings", json=bad_rating("DEMO-0002", target="staff"), headers=key(demo)
    )
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "target"


async def test_idempotency_key_replays_first_response(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    headers = {**key(demo), "Idempotency-Key": "hall-7f3a-0001"}
    first = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers=headers)
    retry = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert await count(db, Rating) == 1
    assert await count(db, Case) == 1

    reused = await offline_api.post("/api/v1/ratings", json=bad_rating("DEMO-0004"), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["detail"]["code"] == "idempotency_key_reused"


async def test_intake_requires_a_valid_api_key(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    assert (await offline_api.post("/api/v1/ratings", json=bad_rating())).status_code == 401
    forged = {"X-API-Key": demo.api_key[:-4] + "AAAA"}
    assert (await offline_api.post("/api/v1/ratings", json=bad_rating(), headers=forged)).status_code == 401


async def test_read_rating_masks_rater_and_is_scoped(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    created = (await offline_api.post("/api/v1/ratings", json=bad_rating(), headers=key(demo))).json()
    url = f"/api/v1/ratings/{created['rating_id']}"

    by_system = await offline_api.get(url, headers=key(demo))
    assert by_system.status_code == 200
    body = by_system.json()
    assert body["rater_name"] == "张**" and body["rater_phone"] == "139****5678"
    assert body["rater_email"] == "z***@example.com" and body["case_id"] == created["case_id"]
    for value in RATER.values():
        assert value not in by_system.text

    own_unit = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    assert (await offline_api.get(url, headers=own_unit)).status_code == 200
    other_unit = await login(offline_api, "rsj_staff", demo.passwords["rsj_staff"])
    assert (await offline_api.get(url, headers=other_unit)).status_code == 404
    assert (await offline_api.get(url)).status_code == 401
