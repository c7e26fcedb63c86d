"""PostgreSQL stops and starts again under a stream of ratings: every answer is 201 or 503, the books balance.

The test runs its own PostgreSQL cluster (tests/support/pg_cluster.py: initdb and pg_ctl from
/usr/lib/postgresql/*/bin) on a free port in a temporary directory, so stopping it harms nobody; it is
skipped when the server binaries are missing. The shared cluster of the other tests is never touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import col, select

from models.case.records import Case
from models.db import Database
from models.outbox import OutboxEntry
from models.ratings import Rating
from models.services import ServiceRecord
from runtime.seed import seed_demo
from runtime.temporal import TemporalConnection
from tests.support.http import bad_rating
from tests.support.pg_cluster import PrivateCluster, migrated_cluster, requires_server_binaries
from tests.support.services import api_client
from tests.support.settings import free_port, make_settings

REQUESTS = 150
CONCURRENCY = 5
OUTAGE_SECONDS = 3.0


pytestmark = requires_server_binaries


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    with migrated_cluster() as pg:
        yield pg


async def _add_records(db: Database, count: int) -> list[str]:
    """Service records to rate, one rating each (a record's item can be rated once)."""
    async with db.session() as session:
        template = (await session.exec(select(ServiceRecord).order_by(col(ServiceRecord.id)))).first()
        assert template is not None
        numbers = [f"OUTAGE-{n:04d}" for n in range(count)]
        for record_no in numbers:
            session.add(
                ServiceRecord(
                    record_no=record_no,
                    item_id=template.item_id,
                    unit_id=template.unit_id,
                    applicant_type=template.applicant_type,
                    service_channel=template.service_channel,
                    source_system=template.source_system,
                    completed_at=template.completed_at,
                )
            )
        await session.commit()
    return numbers


def _rating(record_no: str, bad: bool) -> dict[str, object]:
    if bad:
        return bad_rating(record_no)
    return {"record_no": record_no, "level": "satisfied", "channel": "pc", "target": "item", "answers": {"服务效率": 5}}


async def test_ratings_through_a_database_restart(cluster: PrivateCluster, tmp_path: Path) -> None:
    settings = make_settings(cluster.url, tmp_path, free_port())
    db = Database(settings.async_sqlalchemy_url)
    temporal = TemporalConnection(settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"}))
    try:
        demo = await seed_demo(db, settings)
        record_nos = await _add_records(db, REQUESTS)
        headers = {"X-API-Key": demo.api_key}
        answers: list[tuple[str, bool, httpx.Response]] = []
        done = 0
        gate = asyncio.Semaphore(CONCURRENCY)

        async with api_client(settings, db, temporal) as api:

            async def rate(index: int, record_no: str) -> None:
                nonlocal done
                bad = index % 2 == 0
                async with gate:
                    response = await api.post("/api/v1/ratings", json=_rating(record_no, bad), headers=headers)
                answers.append((record_no, bad, response))
                done += 1
                await asyncio.sleep(0.02)  # a steady stream, so the outage lands mid-stream

            async def outage() -> None:
                while done < REQUESTS // 5:
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(cluster.stop, "fast")
                await asyncio.sleep(OUTAGE_SECONDS)
                await asyncio.to_thread(cluster.start)

            async def stream() -> None:
                tasks = []
                for index, record_no in enumerate(record_nos):
                    tasks.append(asyncio.create_task(rate(index, record_no)))
                    await asyncio.sleep(0.04)
                await asyncio.gather(*tasks)

            await asyncio.wait_for(asyncio.gather(stream(), outage()), timeout=50)
            assert (await api.get("/healthz")).status_code == 200

        statuses = [response.status_code for _, _, response in answers]
        assert len(answers) == REQUESTS
        assert set(statuses) <= {201, 503}, sorted(set(statuses))
        accepted = [
            (record_no, bad, response.json()) for record_no, bad, response in answers if response.status_code == 201
        ]
        refused = [response for _, _, response in answers if response.status_code == 503]
        assert accepted and refused, f"201: {len(accepted)}, 503: {len(refused)}: the outage missed the stream"
        for response in refused:
            assert response.headers["retry-after"].isdigit()
            assert response.headers["x-request-id"]
            assert response.json()["detail"]["code"] == "database_unavailable"

        async with db.session() as session:
            stored = (await session.exec(select(func.count()).select_from(Rating))).one()
            # A 503 wrote nothing; a 201 wrote everything. Nothing half-written either way.
            assert stored == len(accepted), f"{stored} ratings stored, {len(accepted)} answered 201"
            for record_no, bad, body in accepted:
                rating = await session.get(Rating, body["rating_id"])
                assert rating is not None and rating.is_bad == bad, record_no
                if bad:
                    assert body["case_id"] is not None
                    case = await session.get(Case, body["case_id"])
                    assert case is not None and case.rating_id == rating.id
                    outbox = (await session.exec(select(OutboxEntry).where(OutboxEntry.case_id == case.id))).all()
                    assert outbox, f"case {case.id} has no outbox row"
            cases = (await session.exec(select(func.count()).select_from(Case))).one()
            assert cases == sum(1 for _, bad, _ in accepted if bad)
    finally:
        await db.dispose()
