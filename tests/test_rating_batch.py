"""POST /api/v1/ratings:batch on SQLite and PostgreSQL: answers per item, partial success, retries written once."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config import Settings
from models.case.records import Case
from models.db import Database
from models.idempotency import IdempotentResponse
from models.outbox import OutboxEntry
from models.ratings import Rating
from runtime.relay import OutboxRelay
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating
from tests.support.intake import count, source_key
from tests.support.services import running_worker
from tests.support.waiting import eventually

BATCH = "/api/v1/ratings:batch"


def good(record_no: str, **overrides: object) -> dict[str, object]:
    return {"record_no": record_no, "level": "satisfied", "channel": "mobile", **overrides}


def mixed_batch() -> list[dict[str, object]]:
    return [
        good("DEMO-0002"),  # 0 accepted, good
        bad_rating("DEMO-0003"),  # 1 accepted, bad: a case
        good("NO-SUCH-RECORD"),  # 2 unknown record
        {"record_no": "DEMO-0004", "satisfaction_code": "9", "channel": "pc"},  # 3 a code the table lacks
        good("DEMO-0005", rater={"phone": "not a phone"}),  # 4 invalid: the input model refuses it
        {"record_no": "DEMO-0006", "satisfaction_code": 4, "channel_code": "7", "tag_codes": ["402"]},  # 5 bad, codes
        good("DEMO-0002", level="very_satisfied"),  # 6 the same target again in one batch
        good("DEMO-0007", target="staff", idempotency_key="hall-7-staff"),  # 7 accepted, keyed
    ]


async def test_a_batch_answers_each_item_in_order_and_writes_the_good_ones(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    response = await offline_api.post(BATCH, json={"items": mixed_batch()}, headers={"X-API-Key": demo.api_key})
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"]
    assert [i["index"] for i in items] == list(range(8))
    assert [i["status"] for i in items] == ["accepted", "accepted"] + ["rejected"] * 3 + [
        "accepted",
        "rejected",
        "accepted",
    ]
    assert (body["accepted"], body["rejected"], body["written"], body["cases_opened"]) == (4, 4, 4, 2)
    assert items[0]["is_bad"] is False and items[0]["case_id"] is None
    assert items[1]["is_bad"] is True and items[5]["is_bad"] is True
    assert {items[1]["case_id"], items[5]["case_id"]} == {1, 2}
    errors = {i["index"]: i["error"] for i in items if i["status"] == "rejected"}
    assert (errors[2]["code"], errors[2]["field"], errors[2]["value"]) == (
        "unknown_record",
        "record_no",
        "NO-SUCH-RECORD",
    )
    assert (errors[3]["code"], errors[3]["field"], errors[3]["value"], errors[3]["source"]) == (
        "unknown_code",
        "satisfaction_code",
        "9",
        "demo-hall",
    )
    assert (errors[4]["code"], errors[4]["field"]) == ("invalid_request", "rater.phone")
    assert "not a phone" not in response.text  # contact details are never echoed
    assert (errors[6]["code"], errors[6]["field"]) == ("duplicate_item", "target")

    # Exactly the accepted items were written: four ratings, two cases, one outbox row per case.
    assert await count(db, Rating) == 4
    assert await count(db, Case) == 2
    async with db.session() as session:
        outbox = (await session.exec(select(OutboxEntry).order_by(col(OutboxEntry.case_id)))).all()
        coded = await session.get(Rating, items[5]["rating_id"])
    assert [o.case_id for o in outbox] == [1, 2] and all(o.dispatched_at is None for o in outbox)
    assert coded is not None and (coded.level.value, coded.channel.value) == ("dissatisfied", "sms")
    assert coded.answers == {"测评内容": ["dissatisfied/02"]}


async def test_a_retried_batch_answers_as_the_first_time_and_writes_nothing(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    headers = {"X-API-Key": demo.api_key}
    first = (await offline_api.post(BATCH, json={"items": mixed_batch()}, headers=headers)).json()
    retry = (await offline_api.post(BATCH, json={"items": mixed_batch()}, headers=headers)).json()
    assert [i for i in retry["items"] if i["status"] == "accepted"] == [
        i for i in first["items"] if i["status"] == "accepted"
    ]
    assert (retry["accepted"], retry["written"], retry["cases_opened"]) == (4, 0, 0)
    assert await count(db, Rating) == 4 and await count(db, Case) == 2 and await count(db, OutboxEntry) == 2
    assert await count(db, IdempotentResponse) == 1  # the keyed item's answer, stored once

    # The same record and target with something else said is another rating: refused, not overwritten.
    changed = await offline_api.post(BATCH, json={"items": [bad_rating("DEMO-0003", comment="改了")]}, headers=headers)
    assert changed.json()["items"][0]["error"]["code"] == "already_rated"
    # A key used again for another item is refused; the item's key still answers the first time.
    reused = [
        good("DEMO-0008", idempotency_key="hall-7-staff"),
        good("DEMO-0007", target="staff", idempotency_key="hall-7-staff"),
    ]
    answers = (await offline_api.post(BATCH, json={"items": reused}, headers=headers)).json()["items"]
    assert answers[0]["error"]["code"] == "idempotency_key_reused"
    assert answers[1]["error"]["code"] == "duplicate_item"
    alone = (await offline_api.post(BATCH, json={"items": reused[1:]}, headers=headers)).json()["items"]
    assert alone[0]["rating_id"] == first["items"][7]["rating_id"]
    assert await count(db, Rating) == 4


async def test_concurrent_copies_of_one_batch_write_each_rating_once(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    items = [bad_rating(f"DEMO-000{n}") for n in range(1, 9)]
    calls = [offline_api.post(BATCH, json={"items": items}, headers={"X-API-Key": demo.api_key}) for _ in range(4)]
    answers = [r.json() for r in await asyncio.gather(*calls)]
    assert all(a["accepted"] == 8 for a in answers), answers
    assert sum(a["written"] for a in answers) == 8
    assert len({tuple(i["rating_id"] for i in a["items"]) for a in answers}) == 1
    assert await count(db, Rating) == 8 and await count(db, Case) == 8 and await count(db, OutboxEntry) == 8


async def test_batch_limits(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    headers = {"X-API-Key": demo.api_key}
    too_many = await offline_api.post(BATCH, json={"items": [good("DEMO-0002")] * 501}, headers=headers)
    assert too_many.status_code == 422 and too_many.json()["detail"]["field"] == "items"
    empty = await offline_api.post(BATCH, json={"items": []}, headers=headers)
    assert empty.status_code == 422
    # 500 items with long comments pass the body limit that keeps every other route at 64 KiB.
    big = {"items": [good("NO-SUCH", comment="长" * 1000) for _ in range(500)]}
    answer = await offline_api.post(BATCH, json=big, headers=headers)
    assert answer.status_code == 200 and answer.json()["rejected"] == 500
    single = await offline_api.post("/api/v1/ratings", json=good("DEMO-0002", comment="长" * 30000), headers=headers)
    assert single.status_code == 413
    assert (await offline_api.post(BATCH, json={"items": [good("DEMO-0002")]})).status_code == 401


async def test_another_source_reads_its_own_codes_in_a_batch(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    zhejiang = await source_key(offline_api, demo, "zhejiang")
    items = [
        {"record_no": "DEMO-0002", "satisfaction_code": "1", "channel_code": "6", "tag_codes": ["106"]},
        {"record_no": "DEMO-0003", "satisfaction_code": "1", "channel_code": "6", "tag_codes": ["506"]},
    ]
    answer = (await offline_api.post(BATCH, json={"items": items}, headers=zhejiang)).json()
    assert answer["items"][0]["is_bad"] is True
    error = answer["items"][1]["error"]
    assert (error["code"], error["field"], error["value"], error["source"]) == (
        "tag_level_mismatch",
        "tag_codes.0",
        "506",
        "zhejiang",
    )
    assert await count(db, Case) == 1


async def test_the_relay_starts_the_cases_of_a_batch(
    dev_server: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
) -> None:
    items = [bad_rating(f"DEMO-000{n}") for n in (1, 3, 4)] + [good("DEMO-0002")]
    answer = (await offline_api.post(BATCH, json={"items": items}, headers={"X-API-Key": demo.api_key})).json()
    assert answer["cases_opened"] == 3
    async with running_worker(dev_server.client, settings, db):
        stop = asyncio.Event()
        relay = asyncio.create_task(OutboxRelay(db, dev_server.client, settings).run(stop))
        try:
            opened = await eventually(lambda: _started_cases(db), timeout=60)
        finally:
            stop.set()
            await relay
    assert opened == 3
    async with db.session() as session:
        outbox = (await session.exec(select(OutboxEntry))).all()
        cases = (await session.exec(select(Case))).all()
    assert len(outbox) == 3 and all(o.dispatched_at is not None and o.attempts == 1 for o in outbox)
    for case in cases:
        description = await dev_server.client.get_workflow_handle(case.workflow_id).describe()
        assert description.workflow_type == "CaseWorkflow"


async def _started_cases(db: Database) -> int | None:
    async with db.session() as session:
        started = (await session.exec(select(Case).where(col(Case.workflow_started_at).is_not(None)))).all()
    return len(started) if len(started) == 3 else None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_published_schema_describes_each_item(backend: str) -> None:
    schema = create_app().openapi()
    body = schema["paths"][BATCH]["post"]["requestBody"]["content"]["application/json"]["schema"]
    batch = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    item = batch["properties"]["items"]["items"]
    assert {"record_no", "level", "satisfaction_code", "channel_code", "tag_codes", "idempotency_key"} <= set(
        item["properties"]
    )
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(item)))
    assert refs and refs <= set(schema["components"]["schemas"]), refs
