"""The published OpenAPI schema describes every answer: each status documented, each JSON body valid.

The run-wide watch (tests/openapi_conformance.py) checks every answer of every test; this file sends
a representative set of normal and hostile requests and asserts on each one here, so a regression
names the request that found it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from api.app import create_app
from config import Settings
from models.db import Database
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.openapi_conformance import ConformanceWatch
from tests.support.http import bad_rating, login
from tests.support.settings import free_port

HUGE = "9223372036854775808"


async def test_the_schema_has_one_error_body_and_every_error_status(offline_api: httpx.AsyncClient) -> None:
    schema = (await offline_api.get("/openapi.json")).json()
    text = json.dumps(schema)
    assert "HTTPValidationError" not in text
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}
    assert {"field", "errors", "request_id"} <= set(detail["properties"])
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("422", "500", "503"):
                assert status in responses, (method, path, status)
            for status, response in responses.items():
                # The readiness probe's 503 is its report, each check named (api/health.py), not an error.
                body = "Readiness" if (path, status) == ("/readyz", "503") else "ErrorBody"
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": f"#/components/schemas/{body}"
                    }, (method, path, status)
            if path.startswith("/api/v1/") and path != "/api/v1/auth/token":
                assert "401" in responses, (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= set(responses), (method, path)
    assert "429" in schema["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert "403" in schema["paths"]["/api/v1/admin/users"]["get"]["responses"]
    assert "404" in schema["paths"]["/api/v1/admin/users/{user_id}"]["patch"]["responses"]
    assert "409" in schema["paths"]["/api/v1/cases/{case_id}/accept"]["post"]["responses"]
    assert "404" not in schema["paths"]["/api/v1/calendar/{year}"]["get"]["responses"]


async def test_office_hours_are_documented_as_the_local_times_served(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    """JSON Schema's "time" format is RFC 3339's, with an offset; office hours are Beijing time without one.

    The schema said "time" while the API served "08:30:00" (found by tests/test_fuzz_api.py): a client
    checking formats refused every policy.
    """
    schema = (await offline_api.get("/openapi.json")).json()
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    served = (await offline_api.get("/api/v1/policies/national", headers=admin)).json()["profile"]["office_hours"]
    for name in ("opens", "closes"):
        documented = schema["components"]["schemas"]["OfficeHours"]["properties"][name]
        assert "format" not in documented, documented
        assert re.fullmatch(documented["pattern"], served[name]), (documented, served[name])


def test_the_watch_flags_undocumented_statuses_and_wrong_bodies(settings: Settings) -> None:
    app = create_app(settings, Database(settings.async_sqlalchemy_url))
    watch = ConformanceWatch()
    ok = json.dumps({"detail": {"code": "not_found", "message": "无"}}).encode()
    assert watch.check(app, "GET", "/api/v1/admin/users/3", 404, "application/json", ok) is None  # no such route
    assert watch.check(app, "PATCH", "/api/v1/admin/users/3", 404, "application/json", ok) is None
    teapot = watch.check(app, "PATCH", "/api/v1/admin/users/3", 418, "application/json", ok)
    assert teapot is not None and "not documented" in teapot
    # FastAPI's default 422 body (a list) is what the schema used to promise and no longer does.
    fastapi_422 = json.dumps({"detail": [{"loc": ["body"], "msg": "x", "type": "missing"}]}).encode()
    wrong = watch.check(app, "PATCH", "/api/v1/admin/users/3", 422, "application/json", fastapi_422)
    assert wrong is not None and "does not match" in wrong
    text_500 = watch.check(app, "GET", "/healthz", 500, "text/plain", b"Internal Server Error")
    assert text_500 is not None and "text/plain" in text_500
    assert watch.check(app, "GET", "/r/some-token", 410, "text/html", b"<html>") is None  # outside the schema


async def test_real_answers_match_the_schema(
    settings: Settings, db: Database, demo: DemoCredentials, unreachable_temporal: TemporalConnection
) -> None:
    app = create_app(settings, db, unreachable_temporal)
    watch = ConformanceWatch()
    problems = watch.problems
    statuses: set[int] = set()

    async def record(response: httpx.Response) -> None:
        statuses.add(response.status_code)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", event_hooks={"response": [watch.hook(app), record]}
    ) as api:
        admin = await login(api, "admin", demo.passwords["admin"])
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        key = {"X-API-Key": demo.api_key}
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/healthz", {}),
            ("GET", "/healthz?x=%00", {}),
            ("POST", "/api/v1/auth/token", {"data": {"username": "admin", "password": "wrong-password-x"}}),
            ("POST", "/api/v1/auth/token", {"data": {"username": "admin"}}),
            ("GET", "/api/v1/auth/me", {}),
            ("GET", "/api/v1/auth/me", {"headers": admin}),
            ("POST", "/api/v1/ratings", {"json": bad_rating(), "headers": key}),
            ("POST", "/api/v1/ratings", {"json": bad_rating(), "headers": key}),
            ("POST", "/api/v1/ratings", {"json": bad_rating("NO-SUCH"), "headers": key}),
            ("POST", "/api/v1/ratings", {"json": {**bad_rating(), "realName": 1}, "headers": key}),
            (
                "POST",
                "/api/v1/ratings",
                {"content": b"{not json", "headers": {**key, "content-type": "application/json"}},
            ),
            ("POST", "/api/v1/ratings", {"content": b" " * 70_000, "headers": key}),
            ("POST", "/api/v1/ratings", {"json": bad_rating()}),
            ("GET", "/api/v1/ratings/1", {"headers": admin}),
            ("GET", f"/api/v1/ratings/{HUGE}", {"headers": admin}),
            ("GET", "/api/v1/cases", {"headers": admin}),
            ("GET", f"/api/v1/cases?offset={HUGE}", {"headers": admin}),
            ("GET", "/api/v1/cases/1", {"headers": staff}),
            ("GET", "/api/v1/cases/999", {"headers": staff}),
            ("POST", "/api/v1/cases/1/rater/reveal", {"json": {"reason": "电话回访需要"}, "headers": staff}),
            ("POST", "/api/v1/cases/1/rater/reveal", {"json": {"reason": "x"}, "headers": staff}),
            ("GET", "/api/v1/audit", {"headers": admin}),
            ("GET", "/api/v1/audit", {"headers": staff}),
            ("GET", f"/api/v1/audit?offset={HUGE}", {"headers": admin}),
            ("GET", "/api/v1/admin/users", {"headers": admin}),
            ("GET", "/api/v1/admin/users", {"headers": staff}),
            ("PATCH", "/api/v1/admin/users/999", {"json": {"display_name": "x"}, "headers": admin}),
            ("PATCH", "/api/v1/admin/users/1", {"json": {"role": None}, "headers": admin}),
            ("GET", "/api/v1/admin/units", {"headers": admin}),
            ("GET", "/api/v1/admin/api-keys", {"headers": admin}),
            ("DELETE", "/api/v1/admin/api-keys/999", {"headers": admin}),
            ("GET", "/api/v1/policies", {"headers": staff}),
            ("GET", "/api/v1/policies/national", {"headers": staff}),
            ("GET", "/api/v1/policies/nope", {"headers": staff}),
            ("GET", "/api/v1/calendar/2026", {"headers": staff}),
            ("GET", "/api/v1/calendar/46101572", {"headers": staff}),
            ("PUT", "/api/v1/regions/999999/policy", {"json": {"policy_code": "national"}, "headers": admin}),
        ]
        for method, url, options in requests:
            await api.request(method, url, **options)
    assert problems == []
    assert {200, 201, 401, 403, 404, 409, 413, 422} <= statuses, statuses
    assert watch.checked >= len(requests) - 1


async def test_a_database_outage_answer_matches_the_schema(settings: Settings, tmp_path: Any) -> None:
    # A database nobody listens on: every route that needs it answers 503, documented and well-formed.
    down = Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    app = create_app(settings, down, TemporalConnection(settings))
    watch = ConformanceWatch()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
            for method, url, body in (
                ("POST", "/api/v1/auth/token", None),
                ("GET", "/api/v1/calendar/2026", None),
                ("POST", "/api/v1/ratings", bad_rating()),
            ):
                options: dict[str, Any] = {"headers": {"X-API-Key": "hcp_x", "Authorization": "Bearer x"}}
                if body is not None:
                    options["json"] = body
                elif method == "POST":
                    options["data"] = {"username": "admin", "password": "some-password"}
                response = await api.request(method, url, **options)
                assert response.status_code in (401, 503), (url, response.text)
                if response.status_code == 503:
                    assert response.headers["retry-after"].isdigit()
                    assert response.json()["detail"]["code"] == "database_unavailable"
                problem = watch.check(app, method, url, response.status_code, "application/json", response.content)
                assert problem is None, problem
    finally:
        await down.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_login_answers_503_when_the_database_is_down(settings: Settings) -> None:
    down = Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    app = create_app(settings, down, TemporalConnection(settings))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
            response = await api.post("/api/v1/auth/token", data={"username": "admin", "password": "some-password"})
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["detail"]["code"] == "database_unavailable"
        assert response.headers["x-request-id"]
    finally:
        await down.dispose()
