"""Ratings pushed to a real (test) platform over HTTP by the worker's upstream relay, on both databases.

The platform is tests/support/upstream.py on a free port: it counts each push id once, as a platform
honouring the Idempotency-Key does, and keeps every request that reached it, so each test counts
both: what the platform recorded (exactly one per rating) and how often it was asked.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlmodel import col, select

from activities.upstream_sender import excerpt
from config import Settings
from models.db import Database
from models.ratings import Rating
from models.upstream import PushStatus, UpstreamPush
from models.upstream_fields import platform_time
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import RATER, bad_rating
from tests.support.services import api_client
from tests.support.upstream import FakeUpstream, fake_upstream, reporting_to, running_upstream_relay
from tests.support.waiting import eventually

GOOD: dict[str, object] = {"record_no": "DEMO-0002", "level": "satisfied", "channel": "mobile", "comment": "办事很快"}


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as platform:
        yield platform


@pytest.fixture
def reporting(settings: Settings, upstream: FakeUpstream) -> Settings:
    return reporting_to(settings, upstream)


async def rate(api: httpx.AsyncClient, demo: DemoCredentials, body: dict[str, object]) -> int:
    response = await api.post("/api/v1/ratings", json=body, headers={"X-API-Key": demo.api_key})
    assert response.status_code == 201, response.text
    return int(response.json()["rating_id"])


async def pushes(db: Database) -> list[UpstreamPush]:
    async with db.session() as session:
        return list((await session.exec(select(UpstreamPush).order_by(col(UpstreamPush.id)))).all())


async def settled(db: Database, status: PushStatus, count: int = 1, timeout: float = 15.0) -> list[UpstreamPush]:
    """Once `count` pushes are in `status`, every push."""

    async def check() -> list[UpstreamPush]:
        rows = await pushes(db)
        return rows if sum(p.status == status for p in rows) >= count else []

    return await eventually(check, timeout=timeout)


async def test_a_rating_is_pushed_once_in_the_platforms_fields(
    reporting: Settings,
    db: Database,
    demo: DemoCredentials,
    upstream: FakeUpstream,
    unreachable_temporal: TemporalConnection,
) -> None:
    async with api_client(reporting, db, unreachable_temporal) as api, running_upstream_relay(db, reporting):
        rating_id = await rate(api, demo, GOOD)
        [push] = await settled(db, PushStatus.DELIVERED)
        await asyncio.sleep(0.5)  # five more passes of the relay: a delivered push is never sent again
    async with db.session() as session:
        rating = await session.get(Rating, rating_id)
        assert rating is not None
    assert (push.kind, push.subject_id, push.attempts, push.last_error) == ("rating", rating_id, 1, "")
    assert len(upstream.requests) == 1 and list(upstream.recorded) == [push.push_key]
    sent = upstream.requests[0]
    assert sent.key == push.push_key and sent.authorization == f"Bearer {reporting.upstream_token}"
    assert sent.body == {
        "push_id": push.push_key,
        "type": "rating",
        "data": {
            "办件编号": "DEMO-0002",
            "评价渠道": "移动服务端",
            "评价人": "匿名",
            "评价时间": platform_time(rating.submitted_at),
            "评价次数": "1",
            "满意度": "满意",
            "满意度代码": "2",
            "文字评价": "办事很快",
            "行政区划": "370600",
            "评价对象": "事项",
            "评价环节": "整体",
        },
    }
    assert re.fullmatch(r"\d{8}T\d{6}", sent.body["data"]["评价时间"])


async def test_a_real_name_raters_contact_never_goes_upstream(
    settings: Settings,
    db: Database,
    demo: DemoCredentials,
    upstream: FakeUpstream,
    unreachable_temporal: TemporalConnection,
) -> None:
    # A provincial platform counting the other way round: 1 = 非常不满意.
    reporting = reporting_to(settings, upstream, upstream_level_codes="ascending")
    async with api_client(reporting, db, unreachable_temporal) as api, running_upstream_relay(db, reporting):
        await rate(api, demo, bad_rating("DEMO-0001", target="staff"))
        await settled(db, PushStatus.DELIVERED)
    [body] = upstream.recorded.values()
    assert body["data"]["评价人"] == "张**" and body["data"]["评价对象"] == "工作人员"
    assert (body["data"]["满意度"], body["data"]["满意度代码"]) == ("非常不满意", "1")
    everything = json.dumps([r.body for r in upstream.requests], ensure_ascii=False)
    for value in RATER.values():
        assert value not in everything


@pytest.mark.parametrize("lost", ["record_then_error", "record_then_hang"])
async def test_an_answer_lost_after_recording_is_not_a_second_report(
    reporting: Settings,
    db: Database,
    demo: DemoCredentials,
    upstream: FakeUpstream,
    unreachable_temporal: TemporalConnection,
    lost: str,
) -> None:
    # The platform records the push, then answers 500 or nothing before our timeout: we must try again.
    upstream.next_answers = [lost]  # type: ignore[list-item]
    async with api_client(reporting, db, unreachable_temporal) as api, running_upstream_relay(db, reporting):
        await rate(api, demo, GOOD)
        [push] = await settled(db, PushStatus.DELIVERED)
    assert push.attempts == 2 and push.last_error == ""
    # Asked twice with one push id; recorded once.
    assert [r.key for r in upstream.requests] == [push.push_key, push.push_key]
    assert list(upstream.recorded) == [push.push_key]
    assert upstream.requests[0].body == upstream.requests[1].body


async def test_a_platform_down_for_a_while_gets_the_push_when_it_returns(
    settings: Settings,
    db: Database,
    demo: DemoCredentials,
    upstream: FakeUpstream,
    unreachable_temporal: TemporalConnection,
) -> None:
    reporting = reporting_to(settings, upstream, upstream_max_attempts=20)
    await upstream.stop()
    async with api_client(reporting, db, unreachable_temporal) as api, running_upstream_relay(db, reporting):
        await rate(api, demo, GOOD)

        async def failed_three_times() -> UpstreamPush | None:
            [push] = await pushes(db)
            return push if push.attempts >= 3 and push.status == PushStatus.PENDING else None

        started = _now()
        push = await eventually(failed_three_times, timeout=10)
        # Backoff 0.2 s, 0.4 s, 0.8 s …: three attempts take at least 0.6 s (polling every 0.1 s would take 0.2 s).
        assert _now() - started >= 0.55
        assert push.last_error == "ConnectError" and push.next_attempt_at is not None
        await asyncio.sleep(1.0)
        [push] = await pushes(db)
        assert 3 <= push.attempts <= 5, push.attempts  # no hammering while down: doubling waits, capped at 1 s
        await upstream.start()
        [push] = await settled(db, PushStatus.DELIVERED, timeout=10)
    assert len(upstream.requests) == 1 and list(upstream.recorded) == [push.push_key]


def _now() -> float:
    return asyncio.get_running_loop().time()


async def test_every_attempt_failing_ends_in_a_dead_letter_with_the_reason(
    settings: Settings,
    db: Database,
    demo: DemoCredentials,
    upstream: FakeUpstream,
    unreachable_temporal: TemporalConnection,
) -> None:
    reporting = reporting_to(settings, upstream, upstream_max_attempts=3)
    upstream.answer = "error"
    async with api_client(reporting, db, unreachable_temporal) as api, running_upstream_relay(db, reporting):
        await rate(api, demo, GOOD)
        [push] = await settled(db, PushStatus.DEAD)
    assert push.attempts == 3 and len(upstream.requests) == 3 and upstream.recorded == {}
    assert push.last_error == "3 次尝试均失败，最后一次：HTTP 500: " + '{"code":"internal","message":"平台繁忙"}'
    assert push.next_attempt_at is None


async def test_with_reporting_off_a_rating_is_kept_as_skipped(
    settings: Settings, db: Database, demo: DemoCredentials, upstream: FakeUpstream, offline_api: httpx.AsyncClient
) -> None:
    assert not settings.upstream_enabled
    async with running_upstream_relay(db, settings):
        rating_id = await rate(offline_api, demo, GOOD)
    [push] = await pushes(db)
    assert (push.kind, push.subject_id, push.status, push.attempts) == ("rating", rating_id, PushStatus.SKIPPED, 0)
    assert "HCP_UPSTREAM_URL" in push.last_error and upstream.requests == []


def test_a_reason_keeps_ids_and_times_and_blanks_contact_details() -> None:
    answer = (
        '{"push_id": "e6d8b013-a4d3-b991-49e883bb7c0b", "评价时间": "20261123T123346", "phone": "13800009999",\n'
        '"tel": "0535-6123456", "email": "zhang.sanfeng@example.com", "id": "37060219900101123X", "n": "138000099991"}'
    )
    assert (
        excerpt(answer)
        == (
            '{"push_id": "e6d8b013-a4d3-b991-49e883bb7c0b", "评价时间": "20261123T123346", "phone": "***", "tel": "***", '
            '"email": "***", "id": "***", "n": "138000099991"}'
        )[:200]
    )
