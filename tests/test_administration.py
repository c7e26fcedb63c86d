"""Administration and the guards around it: users, API keys, lockout, rate limits, the audit log, the CLI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from config import Settings
from models.db import Database
from runtime.manage import create_admin
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import bad_rating, login
from tests.support.services import api_client

NEW_USER: dict[str, Any] = {
    "username": "yt_reviewer2",
    "display_name": "复核组 赵复核",
    "email": "zhao@yantai.example.cn",
    "role": "reviewer",
    "unit_id": 1,
    "password": "correct horse battery",
}


async def test_users_are_managed_and_every_change_is_audited(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    created = await offline_api.post("/api/v1/admin/users", json=NEW_USER, headers=admin)
    assert created.status_code == 201 and "password" not in created.text
    user_id = created.json()["id"]
    assert (await offline_api.post("/api/v1/admin/users", json=NEW_USER, headers=admin)).status_code == 409
    weak = await offline_api.post(
        "/api/v1/admin/users", json={**NEW_USER, "username": "x_y_z", "password": "short"}, headers=admin
    )
    assert weak.status_code == 422 and weak.json()["detail"]["errors"][0]["field"] == "password"
    no_unit = await offline_api.post(
        "/api/v1/admin/users",
        json={**NEW_USER, "username": "staff_nounit", "role": "unit_staff", "unit_id": None},
        headers=admin,
    )
    assert no_unit.status_code == 422 and no_unit.json()["detail"]["field"] == "unit_id"
    # Reviewers belong to an office as well: they decide only the appeals of the units below it.
    officeless = {**NEW_USER, "username": "reviewer_nounit", "unit_id": None}
    no_office = await offline_api.post("/api/v1/admin/users", json=officeless, headers=admin)
    assert no_office.status_code == 422 and no_office.json()["detail"]["field"] == "unit_id"

    await login(offline_api, NEW_USER["username"], NEW_USER["password"])
    disabled = await offline_api.patch(f"/api/v1/admin/users/{user_id}", json={"active": False}, headers=admin)
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    refused = await offline_api.post(
        "/api/v1/auth/token", data={"username": NEW_USER["username"], "password": NEW_USER["password"]}
    )
    assert refused.status_code == 401
    self_lockout = await offline_api.patch("/api/v1/admin/users/1", json={"active": False}, headers=admin)
    assert self_lockout.status_code == 422

    log = (await offline_api.get("/api/v1/audit", params={"target_type": "user"}, headers=admin)).json()
    assert [item["action"] for item in log["items"]] == ["user.update", "user.create"]
    update = log["items"][0]
    assert update["before"]["active"] is True and update["after"]["active"] is False
    assert "password_hash" not in str(log) and NEW_USER["password"] not in str(log)


async def test_api_keys_are_shown_once_scoped_and_revocable(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    created = (
        await offline_api.post(
            "/api/v1/admin/api-keys", json={"name": "12345 热线系统", "source_system": "hotline-12345"}, headers=admin
        )
    ).json()
    key = created["key"]
    assert key.startswith("hcp_") and "key" not in (await offline_api.get("/api/v1/admin/api-keys", headers=admin)).text
    rating = await offline_api.post("/api/v1/ratings", json=bad_rating(channel="phone"), headers={"X-API-Key": key})
    assert rating.status_code == 201
    rating_id = rating.json()["rating_id"]
    # Scoped to its source system: another system's key cannot read this rating.
    assert (await offline_api.get(f"/api/v1/ratings/{rating_id}", headers={"X-API-Key": key})).status_code == 200
    assert (
        await offline_api.get(f"/api/v1/ratings/{rating_id}", headers={"X-API-Key": demo.api_key})
    ).status_code == 404

    revoked = await offline_api.delete(f"/api/v1/admin/api-keys/{created['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = await offline_api.post("/api/v1/ratings", json=bad_rating("DEMO-0004"), headers={"X-API-Key": key})
    assert again.status_code == 401
    log = (await offline_api.get("/api/v1/audit", params={"target_type": "api_key"}, headers=admin)).json()
    assert [i["action"] for i in log["items"]] == ["apikey.revoke", "apikey.create"] and key not in str(log)


async def test_repeated_failed_logins_lock_the_account_for_a_while(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    for _ in range(5):
        wrong = await offline_api.post("/api/v1/auth/token", data={"username": "scj_staff", "password": "guess"})
        assert wrong.status_code == 401
    locked = await offline_api.post(
        "/api/v1/auth/token", data={"username": "scj_staff", "password": demo.passwords["scj_staff"]}
    )
    assert locked.status_code == 429 and "锁定" in locked.json()["detail"]["message"]
    assert int(locked.headers["Retry-After"]) > 0

    admin = await login(offline_api, "admin", demo.passwords["admin"])
    log = (await offline_api.get("/api/v1/audit", params={"action": "auth.locked"}, headers=admin)).json()
    assert log["total"] == 1 and log["items"][0]["target_id"] == "4"
    await offline_api.patch("/api/v1/admin/users/4", json={"unlock": True}, headers=admin)
    await login(offline_api, "scj_staff", demo.passwords["scj_staff"])


async def test_public_routes_are_rate_limited_per_client(
    settings: Settings, db: Database, demo: DemoCredentials, unreachable_temporal: TemporalConnection
) -> None:
    limited = settings.model_copy(update={"public_rate_limit_per_minute": 3})
    async with api_client(limited, db, unreachable_temporal) as api:
        answers = [(await api.get("/r/some-token")).status_code for _ in range(4)]
        assert answers == [404, 404, 404, 429]
        # Each public group has its own count; a person on a page is answered with a page.
        for path in ("/w/NO-SUCH-WINDOW", "/q/not-a-real-token", "/login"):
            answers = [(await api.get(path)).status_code for _ in range(3)]
            assert 429 not in answers, (path, answers)
            refused = await api.get(path)
            assert refused.status_code == 429 and refused.headers["content-type"].startswith("text/html"), path
            assert "请稍后再试" in refused.text and refused.headers["retry-after"] == "60"
        # Authenticated API routes are not throttled by it.
        admin = {"X-API-Key": demo.api_key}
        assert (await api.post("/api/v1/ratings", json=bad_rating(), headers=admin)).status_code == 201


async def test_audit_log_scope_and_append_only(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, backend: str
) -> None:
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    await offline_api.post(
        "/api/v1/admin/units", json={"code": "YT-OTHER", "name": "外单位", "region_code": "370600"}, headers=admin
    )
    await offline_api.post(
        "/api/v1/admin/units",
        json={"code": "YT-SCJ-2", "name": "市场监管局分局", "region_code": "370600", "parent_code": "YT-SCJ"},
        headers=admin,
    )
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    seen = (await offline_api.get("/api/v1/audit", headers=supervisor)).json()
    # The management office supervises YT-SCJ-2 (under 市场监管局) but not the new top-level unit.
    assert [i["after"]["code"] for i in seen["items"]] == ["YT-SCJ-2"]
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    assert (await offline_api.get("/api/v1/audit", headers=staff)).status_code == 403

    if backend == "postgresql":
        async with db.session() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await (await session.connection()).execute(text("UPDATE auditevent SET reason = 'edited'"))
            await session.rollback()
            with pytest.raises(DBAPIError, match="append-only"):
                await (await session.connection()).execute(text("DELETE FROM auditevent"))


async def test_first_admin_from_the_command_line(
    db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient
) -> None:
    await create_admin(db, "ops_admin", "运维管理员", "a-password-of-length")
    await login(offline_api, "ops_admin", "a-password-of-length")
    with pytest.raises(SystemExit, match="already exists"):
        await create_admin(db, "ops_admin", "x", "a-password-of-length")
