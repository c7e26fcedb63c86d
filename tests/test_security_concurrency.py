"""Races and stale credentials: concurrent wrong passwords, tokens after a password change or
deactivation, and concurrent retries of one rating with one Idempotency-Key. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import func, select

import api.auth
import models.rating_intake
from config import Settings
from models.audit import AuditEvent
from models.case.records import Case
from models.db import Database, utcnow
from models.idempotency import IdempotentResponse
from models.outbox import OutboxEntry
from models.ratings import Rating
from models.users import User
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import RATER, bad_rating, login

TOKEN_URL = "/api/v1/auth/token"
STAFF_ID = 4  # scj_staff in the demo data


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def locked_audits(db: Database) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.locked")
        return (await session.exec(query)).one()


async def staff_row(db: Database) -> User:
    async with db.session() as session:
        user = await session.get(User, STAFF_ID)
        assert user is not None and user.username == "scj_staff"
        return user


def try_login(api: httpx.AsyncClient, password: str, username: str = "scj_staff") -> Awaitable[httpx.Response]:
    return api.post(TOKEN_URL, data={"username": username, "password": password})


# --- login lockout -------------------------------------------------------------------------------


async def test_concurrent_wrong_passwords_cannot_outrun_the_limit(
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evaluated: list[str] = []
    real_verify = api.auth.verify_password

    def counting_verify(password: str, password_hash: str) -> bool:
        evaluated.append(password)
        return real_verify(password, password_hash)

    monkeypatch.setattr(api.auth, "verify_password", counting_verify)
    limit = settings.login_max_failures

    answers = await asyncio.gather(*(try_login(offline_api, f"guess-{i}") for i in range(25)))

    assert len(evaluated) == limit
    refused = [a for a in answers if a.status_code == 429]
    wrong = [a for a in answers if a.status_code == 401]
    assert len(wrong) == limit and len(refused) == 25 - limit
    assert all(a.json()["detail"]["code"] == "bad_credentials" for a in wrong)
    assert all(a.json()["detail"]["code"] == "account_locked" for a in refused)
    assert all(int(a.headers["Retry-After"]) > 0 for a in refused)
    assert await locked_audits(db) == 1
    user = await staff_row(db)
    assert user.locked_until is not None and user.locked_until > utcnow() and user.failed_logins == 0

    # Locked: even the right password is refused, and not evaluated.
    right = await try_login(offline_api, demo.passwords["scj_staff"])
    assert right.status_code == 429 and right.json()["detail"]["code"] == "account_locked"
    assert len(evaluated) == limit and await locked_audits(db) == 1

    admin = await login(offline_api, "admin", demo.passwords["admin"])
    unlocked = await offline_api.patch(f"/api/v1/admin/users/{STAFF_ID}", json={"unlock": True}, headers=admin)
    assert unlocked.status_code == 200
    await login(offline_api, "scj_staff", demo.passwords["scj_staff"])


async def test_a_success_resets_the_count(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, settings: Settings
) -> None:
    limit = settings.login_max_failures
    for _ in range(2):
        for _ in range(limit - 1):
            assert (await try_login(offline_api, "guess")).status_code == 401
        await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    assert (await staff_row(db)).failed_logins == 0
    assert await locked_audits(db) == 0


async def test_an_attempt_that_never_finished_cannot_lock_the_account_for_good(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, settings: Settings
) -> None:
    # As if the request holding the last allowed attempt died between counting it and locking.
    async with db.session() as session:
        user = await session.get(User, STAFF_ID)
        assert user is not None
        user.failed_logins = settings.login_max_failures
        session.add(user)
        await session.commit()

    assert (await try_login(offline_api, demo.passwords["scj_staff"])).status_code == 429
    assert await locked_audits(db) == 1
    async with db.session() as session:
        user = await session.get(User, STAFF_ID)
        assert user is not None and user.locked_until is not None
        user.locked_until = utcnow() - timedelta(seconds=1)  # the lock runs out
        session.add(user)
        await session.commit()
    await login(offline_api, "scj_staff", demo.passwords["scj_staff"])


# --- tokens and credential changes ---------------------------------------------------------------


async def test_a_password_reset_ends_every_older_token(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    old_sessions = [await login(offline_api, "scj_staff", demo.passwords["scj_staff"]) for _ in range(2)]
    for headers in old_sessions:
        assert (await offline_api.get("/api/v1/auth/me", headers=headers)).status_code == 200

    admin = await login(offline_api, "admin", demo.passwords["admin"])
    new_password = "a-brand-new-password-2024"
    reset = await offline_api.patch(f"/api/v1/admin/users/{STAFF_ID}", json={"password": new_password}, headers=admin)
    assert reset.status_code == 200

    for headers in old_sessions:
        refused = await offline_api.get("/api/v1/auth/me", headers=headers)
        assert refused.status_code == 401 and refused.json()["detail"]["code"] == "not_authenticated"
        assert (await offline_api.get("/api/v1/cases", headers=headers)).status_code == 401
    assert (await try_login(offline_api, demo.passwords["scj_staff"])).status_code == 401
    fresh = await login(offline_api, "scj_staff", new_password)
    assert (await offline_api.get("/api/v1/auth/me", headers=fresh)).status_code == 200
    # Only that user's tokens: the admin's own is untouched.
    assert (await offline_api.get("/api/v1/auth/me", headers=admin)).status_code == 200


async def test_a_deactivated_users_token_is_refused_and_reactivation_revives_it(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    url = f"/api/v1/admin/users/{STAFF_ID}"

    assert (await offline_api.patch(url, json={"active": False}, headers=admin)).status_code == 200
    assert (await offline_api.get("/api/v1/auth/me", headers=staff)).status_code == 401
    assert (await try_login(offline_api, demo.passwords["scj_staff"])).status_code == 401

    # Documented choice (docs/security.md): reactivation alone revives an unexpired token ...
    assert (await offline_api.patch(url, json={"active": True}, headers=admin)).status_code == 200
    assert (await offline_api.get("/api/v1/auth/me", headers=staff)).status_code == 200
    # ... and a password reset with it is how to make sure it does not.
    assert (await offline_api.patch(url, json={"active": False}, headers=admin)).status_code == 200
    revive = {"active": True, "password": "another-new-password-2024"}
    assert (await offline_api.patch(url, json=revive, headers=admin)).status_code == 200
    assert (await offline_api.get("/api/v1/auth/me", headers=staff)).status_code == 401


# --- rating intake idempotency -------------------------------------------------------------------


async def test_concurrent_retries_of_one_rating_write_it_once(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    headers = {"X-API-Key": demo.api_key, "Idempotency-Key": "tablet-17-0042"}

    answers = await asyncio.gather(
        *(offline_api.post("/api/v1/ratings", json=bad_rating(), headers=headers) for _ in range(10))
    )

    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == [""] + ["true"] * 9
    first = answers[0].json()
    assert first["is_bad"] is True and first["case_id"] is not None
    assert await count(db, Rating) == 1
    assert await count(db, Case) == 1
    assert await count(db, OutboxEntry) == 1
    assert await count(db, IdempotentResponse) == 1

    later = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers=headers)
    assert later.status_code == 201 and later.json() == first
    assert later.headers.get("Idempotent-Replayed") == "true"

    reused = await offline_api.post("/api/v1/ratings", json=bad_rating("DEMO-0004"), headers=headers)
    assert reused.status_code == 422 and reused.json()["detail"]["code"] == "idempotency_key_reused"
    for model in (Rating, Case, OutboxEntry, IdempotentResponse):
        assert await count(db, model) == 1, model.__name__


async def test_concurrent_retries_of_a_refused_rating_store_nothing(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    headers = {"X-API-Key": demo.api_key, "Idempotency-Key": "tablet-17-0043"}

    answers = await asyncio.gather(
        *(offline_api.post("/api/v1/ratings", json=bad_rating(), headers=headers) for _ in range(5))
    )

    assert [a.status_code for a in answers] == [409] * 5
    assert all(a.json()["detail"]["code"] == "already_rated" for a in answers)
    assert await count(db, Rating) == 1
    assert await count(db, IdempotentResponse) == 0


async def test_a_failure_after_the_commit_still_answers_201(
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    unreachable_temporal: TemporalConnection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    started: list[str] = []

    async def temporal_client() -> object:
        return object()

    async def start_workflow(_client: object, workflow_id: str, *_args: object) -> None:
        started.append(workflow_id)

    async def database_hiccup(*_args: object) -> None:
        raise OperationalError("UPDATE outboxentry", {}, ConnectionResetError())

    monkeypatch.setattr(unreachable_temporal, "client", temporal_client)
    # Intake is models/rating_intake.py, shared by the API and the rater's pages.
    monkeypatch.setattr(models.rating_intake, "start_case_workflow", start_workflow)
    monkeypatch.setattr(models.rating_intake, "_mark_dispatched", database_hiccup)

    with caplog.at_level(logging.WARNING, logger="models.rating_intake"):
        response = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})

    assert response.status_code == 201, response.text
    assert len(started) == 1
    assert await count(db, Rating) == 1
    async with db.session() as session:
        outbox = (await session.exec(select(OutboxEntry))).one()
    assert outbox.dispatched_at is None  # the relay starts it again; a second start is harmless
    logged = [r.getMessage() for r in caplog.records if r.name == "models.rating_intake"]
    assert any("OperationalError" in m and str(response.json()["rating_id"]) in m for m in logged), logged
    assert not any(value in m for m in logged for value in RATER.values())


async def test_rating_ids_out_of_range_are_refused(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    headers = {"X-API-Key": demo.api_key}
    for rating_id in ("0", "-1", "2147483648", "99999999999999999999"):
        response = await offline_api.get(f"/api/v1/ratings/{rating_id}", headers=headers)
        assert response.status_code == 422, (rating_id, response.text)
    assert (await offline_api.get("/api/v1/ratings/2147483647", headers=headers)).status_code == 404
