"""Login, token expiry and tampering, and the rule that no endpoint is open by accident."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import jwt

from config import Settings
from models.db import Database
from models.users import User
from runtime.seed import DemoCredentials
from tests.support.http import login

# Routes that are open on purpose. Everything else must answer 401 to an anonymous caller.
OPEN_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/token"),
}


async def test_login_and_me(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    headers = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    me = await offline_api.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["role"] == "unit_staff" and me.json()["username"] == "scj_staff"
    assert "password" not in me.text


async def test_bad_password_and_unknown_user_get_the_same_answer(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    wrong = await offline_api.post("/api/v1/auth/token", data={"username": "scj_staff", "password": "nope"})
    unknown = await offline_api.post("/api/v1/auth/token", data={"username": "ghost", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_expired_and_tampered_tokens_are_refused(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, settings: Settings
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = jwt.encode({"sub": "4", "exp": past, "typ": "access"}, settings.signing_key(), algorithm="HS256")
    forged = jwt.encode(
        {"sub": "1", "exp": past + timedelta(hours=2), "typ": "access"},
        "an-attacker-chosen-key-of-sufficient-length",
        algorithm="HS256",
    )
    for token in (expired, forged, "garbage"):
        response = await offline_api.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


async def test_deactivated_user_loses_access(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    headers = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    async with db.session() as session:
        user = await session.get(User, 4)
        assert user is not None and user.username == "scj_staff"
        user.active = False
        session.add(user)
        await session.commit()
    assert (await offline_api.get("/api/v1/cases", headers=headers)).status_code == 401


async def test_every_route_refuses_anonymous_callers(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    schema = (await offline_api.get("/openapi.json")).json()
    checked = []
    for path, operations in schema["paths"].items():
        for method in operations:
            if (method.upper(), path) in OPEN_ROUTES:
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            response = await offline_api.request(method.upper(), url, json={})
            assert response.status_code == 401, (
                f"{method.upper()} {path} answered {response.status_code} to an anonymous caller"
            )
            checked.append(f"{method.upper()} {path}")
    assert len(checked) >= 12, checked
