"""/metrics: the request series by route template, who may scrape, the database figures and their cache.

The case figures come from real cases driven through the workflow on the time-skipping server
(test_case_figures_follow_real_cases); notice and push figures from the rows the relays leave.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from config import Settings
from models.case.step_inputs import AcceptInput
from models.case.vocabulary import Stage
from models.db import Database, utcnow
from models.notifications import NoticeStatus, Notification
from models.upstream import PushKind, PushStatus, UpstreamPush
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.case_driver import SCJ_STAFF, to_rater_response
from tests.support.db import case_row
from tests.support.http import bad_rating, login
from tests.support.settings import free_port
from tests.support.waiting import eventually
from tests.support.world import World
from workflows.case import CaseWorkflow

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def client_of(app: object, host: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 40000)), base_url="http://testserver")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_requests_are_counted_by_route_template_never_by_path(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    before = await scrape(offline_api)
    token = "tok-metrics-4f2a9c"  # a rater link's token: it must never reach a label
    assert (await offline_api.get(f"/r/{token}")).status_code == 404
    created = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    assert created.status_code == 201
    response = await offline_api.get("/metrics")
    after = samples(response.text)

    link = {"method": "GET", "route": "/r/{token}", "status_class": "4xx"}
    assert value(after, "hcp_http_requests_total", **link) == value(before, "hcp_http_requests_total", **link) + 1
    rating = {"method": "POST", "route": "/api/v1/ratings", "status_class": "2xx"}
    assert value(after, "hcp_http_requests_total", **rating) == value(before, "hcp_http_requests_total", **rating) + 1
    timed = {"method": "POST", "route": "/api/v1/ratings"}
    count = "hcp_http_request_duration_seconds_count"
    assert value(after, count, **timed) == value(before, count, **timed) + 1
    assert token not in response.text
    # The rating taken is counted by its channel once committed.
    received = value(after, "hcp_ratings_received_total", channel="hall_tablet")
    assert received == value(before, "hcp_ratings_received_total", channel="hall_tablet") + 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_unhandled_error_is_counted_by_route(settings: Settings, db: Database) -> None:
    app = create_app(settings, db, TemporalConnection(settings))

    @app.get("/api/v1/metrics-probe/{item}")
    async def broken(item: str) -> None:
        raise RuntimeError("a bug")

    async with client_of(app) as client:
        before = await scrape(client)
        assert (await client.get("/api/v1/metrics-probe/1")).status_code == 500
        after = await scrape(client)
    route = "/api/v1/metrics-probe/{item}"
    assert value(after, "hcp_http_unhandled_errors_total", route=route) == 1 + value(
        before, "hcp_http_unhandled_errors_total", route=route
    )
    failed = {"method": "GET", "route": route, "status_class": "5xx"}
    assert value(after, "hcp_http_requests_total", **failed) == 1 + value(before, "hcp_http_requests_total", **failed)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_who_may_scrape(settings: Settings, db: Database, demo: DemoCredentials) -> None:
    open_app = create_app(settings, db, TemporalConnection(settings))
    async with client_of(open_app) as local, client_of(open_app, "203.0.113.7") as remote:
        assert (await local.get("/metrics")).status_code == 200
        # A proxy on this host relays outside callers from loopback: its forwarding headers give it away.
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            relayed = await local.get("/metrics", headers={header: "203.0.113.7"})
            assert relayed.status_code == 403, header
            assert relayed.json()["detail"]["code"] == "forbidden"
        assert (await remote.get("/metrics")).status_code == 403

    token = "scrape-token-" + "k" * 24
    guarded = create_app(settings.model_copy(update={"metrics_token": token}), db, TemporalConnection(settings))
    async with client_of(guarded) as local, client_of(guarded, "203.0.113.7") as remote:
        staff = await login(local, "admin", demo.passwords["admin"])
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}, staff):
            refused = await local.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"] == "Bearer"
        assert (await remote.get("/metrics", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        assert (await local.get("/metrics", headers={"Authorization": f"bearer {token}"})).status_code == 200


async def test_notice_and_push_figures_count_what_waits(offline_api: httpx.AsyncClient, db: Database) -> None:
    now = utcnow()
    notices = [
        (NoticeStatus.PENDING, 0, None),  # waiting for its first try
        (NoticeStatus.PENDING, 0, now + timedelta(hours=9)),  # held until office hours: not late
        (NoticeStatus.PENDING, 3, now - timedelta(minutes=5)),  # failed three times, due again 5 minutes ago
        (NoticeStatus.SENDING, 1, None),
        (NoticeStatus.FAILED, 1, None),
        (NoticeStatus.FAILED, 2, None),
        (NoticeStatus.SENT, 1, None),
    ]
    pushes = [PushStatus.PENDING, PushStatus.DEAD, PushStatus.DEAD, PushStatus.DELIVERED, PushStatus.SKIPPED]
    async with db.session() as session:
        for i, (status, attempts, next_at) in enumerate(notices):
            session.add(
                Notification(
                    kind="reminder",
                    recipient_ref="user:4",
                    dedup_key=f"metrics-{i}",
                    status=status,
                    attempts=attempts,
                    next_attempt_at=next_at,
                    created_at=now - timedelta(minutes=1),
                )
            )
        for i, push_status in enumerate(pushes):
            session.add(
                UpstreamPush(
                    push_key=f"push-{i}", kind=PushKind.RATING, subject_id=i + 1, status=push_status, attempts=i
                )
            )
        await session.commit()

    found = await scrape(offline_api)
    assert value(found, "hcp_figures_up") == 1
    assert {
        state: value(found, "hcp_notices", state=state) for state in ("waiting", "retrying", "sending", "failed")
    } == {
        "waiting": 2,
        "retrying": 1,
        "sending": 1,
        "failed": 2,
    }
    # The longest-waiting due notice fell due again five minutes ago (the held one is not due).
    assert 300 <= value(found, "hcp_notice_send_lag_seconds") < 360
    # Push 0 is pending without a failure; 1 and 2 are dead letters.
    assert {state: value(found, "hcp_upstream_pushes", state=state) for state in ("waiting", "retrying", "dead")} == {
        "waiting": 1,
        "retrying": 0,
        "dead": 2,
    }


async def test_case_figures_follow_real_cases(world: World) -> None:
    overdue = await world.open(record_no="DEMO-0001")  # Yantai: callback due one working day after accepting
    await overdue.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await world.sleep(timedelta(days=14))
    await eventually(lambda: _rung_reached(world.db, overdue.case_id, 2))
    waiting = await world.open(record_no="DEMO-0003")  # opened after the jump: nothing is due yet (人社局)
    answered = await world.open(record_no="DEMO-0002")
    await to_rater_response(answered)

    app = create_app(
        world.settings.model_copy(update={"metrics_cache_seconds": 0}), world.db, TemporalConnection(world.settings)
    )
    async with client_of(app) as client:
        found = await scrape(client)
    open_by_stage = {stage: value(found, "hcp_cases_open", stage=stage) for stage in _open_stages(found)}
    assert open_by_stage == {
        **dict.fromkeys(open_by_stage, 0.0),
        Stage.VERIFICATION.value: 1,
        Stage.ASSIGNED.value: 1,
        Stage.RATER_RESPONSE.value: 1,
    }
    assert len(open_by_stage) == 8  # every open stage is a series, 0 or not
    assert value(found, "hcp_cases_overdue", rung="2") == 1
    assert value(found, "hcp_cases_overdue", rung="1") == value(found, "hcp_cases_overdue", rung="0") == 0
    assert await waiting.stage_is(Stage.ASSIGNED)


def _open_stages(found: Samples) -> list[str]:
    return sorted(dict(labels)["stage"] for name, labels in found if name == "hcp_cases_open")


async def _rung_reached(db: Database, case_id: int, rung: int) -> bool:
    row = await case_row(db, case_id)
    return row.overdue and row.escalation_rung >= rung


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_scrape_storm_reads_the_database_once(settings: Settings, db: Database) -> None:
    # A cache far longer than the storm takes, even on a loaded machine: the storm shares one read.
    app = create_app(settings.model_copy(update={"metrics_cache_seconds": 60}), db, TemporalConnection(settings))
    cache = app.state.metrics_figures
    async with client_of(app) as client:
        answers = await asyncio.gather(*(client.get("/metrics") for _ in range(20)))
        assert [a.status_code for a in answers] == [200] * 20
        assert cache.reads == 1
        # Once the figures are older than the cache allows, the next scrape reads again.
        cache._max_age = 0.0
        await scrape(client)
        assert cache.reads == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_database_down_still_answers_without_figures(settings: Settings) -> None:
    down = Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere")
    app = create_app(settings, down, TemporalConnection(settings))
    try:
        async with client_of(app) as client:
            found = await scrape(client)
    finally:
        await down.dispose()
    assert value(found, "hcp_figures_up") == 0
    assert not any(name == "hcp_cases_open" for name, _ in found)
    assert any(name == "hcp_http_requests_total" for name, _ in found)
