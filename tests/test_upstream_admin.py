"""Dead letters and the manual re-push, through the API and the administrator's page, on both databases.

A push the platform refuses for good stops as a dead letter with the reason; once the cause is
fixed an administrator sends it again, and the platform counts it once. Each retry is audited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from sqlmodel import col, select

from config import Settings
from models.audit import AuditEvent
from models.db import Database
from models.upstream import PushStatus, UpstreamPush
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import login
from tests.support.pages import form_csrf, page_login
from tests.support.services import api_client
from tests.support.upstream import FakeUpstream, fake_upstream, reporting_to, running_upstream_relay
from tests.support.waiting import eventually

GOOD: dict[str, object] = {
    "record_no": "DEMO-0002",
    "level": "satisfied",
    "channel": "mobile",
    "comment": "联系我 13800009999",
}


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as platform:
        yield platform


async def push_in(db: Database, status: PushStatus) -> UpstreamPush:
    async def check() -> UpstreamPush | None:
        async with db.session() as session:
            rows = (await session.exec(select(UpstreamPush))).all()
        return rows[0] if len(rows) == 1 and rows[0].status == status else None

    return await eventually(check, timeout=15)


async def retries_audited(db: Database) -> list[AuditEvent]:
    async with db.session() as session:
        rows = await session.exec(
            select(AuditEvent).where(AuditEvent.action == "upstream.retry").order_by(col(AuditEvent.id))
        )
        return list(rows.all())


async def test_a_refused_push_is_a_dead_letter_until_an_administrator_retries_it(
    settings: Settings,
    db: Database,
    demo: DemoCredentials,
    upstream: FakeUpstream,
    unreachable_temporal: TemporalConnection,
) -> None:
    reporting = reporting_to(settings, upstream)
    upstream.answer = "reject"
    async with api_client(reporting, db, unreachable_temporal) as api, running_upstream_relay(db, reporting):
        created = await api.post("/api/v1/ratings", json=GOOD, headers={"X-API-Key": demo.api_key})
        assert created.status_code == 201, created.text
        dead = await push_in(db, PushStatus.DEAD)
        # A permanent refusal is not retried: one attempt, the status and the start of the answer kept.
        assert dead.attempts == 1 and len(upstream.requests) == 1
        assert dead.last_error.startswith("HTTP 422: ") and "行政区划不在本平台范围" in dead.last_error
        # The answer echoed contact details (the platform's and the rater's comment): blanked in our record.
        assert "13800009999" not in dead.last_error and "***" in dead.last_error

        admin = await login(api, "admin", demo.passwords["admin"])
        listed = await api.get("/api/v1/upstream/dead-letters", headers=admin)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["reporting_on"] is True and body["total"] == 1
        assert body["counts"] == {"pending": 0, "sending": 0, "delivered": 0, "dead": 1, "skipped": 0}
        assert [(p["id"], p["kind"], p["last_error"]) for p in body["items"]] == [(dead.id, "rating", dead.last_error)]

        staff = await login(api, "supervisor", demo.passwords["supervisor"])
        assert (await api.post(f"/api/v1/upstream/pushes/{dead.id}/retry", headers=staff)).status_code == 403
        assert await retries_audited(db) == []

        upstream.answer = "ok"  # the platform's side is fixed
        retried = await api.post(f"/api/v1/upstream/pushes/{dead.id}/retry", headers=admin)
        assert retried.status_code == 200, retried.text
        assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
        delivered = await push_in(db, PushStatus.DELIVERED)
        again = await api.post(f"/api/v1/upstream/pushes/{dead.id}/retry", headers=admin)
        assert again.status_code == 409 and again.json()["detail"]["code"] == "not_failed"
        missing = await api.post("/api/v1/upstream/pushes/999/retry", headers=admin)
        assert missing.status_code == 404

    assert (delivered.attempts, delivered.last_error, delivered.push_key) == (1, "", dead.push_key)
    assert len(upstream.requests) == 2 and list(upstream.recorded) == [dead.push_key]
    [record] = await retries_audited(db)
    assert record.actor.startswith("user:") and record.actor_role == "admin" and record.target_id == str(dead.id)
    assert record.before["status"] == "dead" and record.after == {"status": "pending"}


async def test_after_fixing_the_credentials_the_page_pushes_a_dead_letter_again(
    settings: Settings,
    db: Database,
    demo: DemoCredentials,
    upstream: FakeUpstream,
    unreachable_temporal: TemporalConnection,
) -> None:
    wrong = reporting_to(settings, upstream, upstream_token="an-expired-token")
    async with api_client(wrong, db, unreachable_temporal) as api:
        async with running_upstream_relay(db, wrong):
            created = await api.post("/api/v1/ratings", json=GOOD, headers={"X-API-Key": demo.api_key})
            assert created.status_code == 201, created.text
            dead = await push_in(db, PushStatus.DEAD)
        assert dead.last_error.startswith("HTTP 401: ") and upstream.recorded == {}

        signed = await page_login(api, "admin", demo.passwords["admin"])
        assert signed.status_code == 303
        page = await api.get("/admin/upstream")
        assert page.status_code == 200
        assert "上报失败（1 条）" in page.text and "HTTP 401" in page.text and "令牌无效" in page.text
        assert f'action="/admin/upstream/pushes/{dead.id}/retry"' in page.text

        # The worker is restarted with the right token; the administrator presses 重新上报.
        fixed = reporting_to(settings, upstream)
        async with running_upstream_relay(db, fixed):
            posted = await api.post(f"/admin/upstream/pushes/{dead.id}/retry", data={"csrf": form_csrf(page)})
            assert posted.status_code == 303 and posted.headers["location"] == "/admin/upstream?done=retried"
            await push_in(db, PushStatus.DELIVERED)
        after = await api.get("/admin/upstream?done=retried")
        assert "已重新排队上报" in after.text and "没有上报失败的记录" in after.text
        # Pressing it again (a second tab) is refused on the page, and nothing is sent.
        second = await api.post(f"/admin/upstream/pushes/{dead.id}/retry", data={"csrf": form_csrf(page)})
        assert second.status_code == 409 and "无需重新上报" in second.text

    assert list(upstream.recorded) == [dead.push_key] and len(upstream.requests) == 2
    assert len(await retries_audited(db)) == 1


async def test_a_push_skipped_while_reporting_was_off_can_be_sent_once_it_is_on(
    settings: Settings,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    upstream: FakeUpstream,
    unreachable_temporal: TemporalConnection,
) -> None:
    created = await offline_api.post("/api/v1/ratings", json=GOOD, headers={"X-API-Key": demo.api_key})
    assert created.status_code == 201
    skipped = await push_in(db, PushStatus.SKIPPED)
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    refused = await offline_api.post(f"/api/v1/upstream/pushes/{skipped.id}/retry", headers=admin)
    assert refused.status_code == 409 and refused.json()["detail"]["code"] == "upstream_off"
    listed = (await offline_api.get("/api/v1/upstream/dead-letters", headers=admin)).json()
    assert listed["reporting_on"] is False and listed["counts"]["skipped"] == 1 and listed["items"] == []
    assert await retries_audited(db) == [] and upstream.requests == []

    # Reporting is switched on: nothing is sent on its own, the administrator chooses to send it.
    reporting = reporting_to(settings, upstream)
    async with api_client(reporting, db, unreachable_temporal) as api, running_upstream_relay(db, reporting):
        retried = await api.post(f"/api/v1/upstream/pushes/{skipped.id}/retry", headers=admin)
        assert retried.status_code == 200, retried.text
        await push_in(db, PushStatus.DELIVERED)
    assert list(upstream.recorded) == [skipped.push_key] and len(upstream.requests) == 1
    assert [r.before["status"] for r in await retries_audited(db)] == ["skipped"]
