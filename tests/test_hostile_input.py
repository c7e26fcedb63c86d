"""Odd and hostile input is answered with a 4xx ErrorBody, never a 500 or a dropped connection.

Also: unknown fields, NUL characters, oversized bodies, explicit nulls, the security headers on
every kind of answer, /docs served without anything from outside, and the JSON 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from config import Settings
from models.db import Database
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import bad_rating, login

HUGE = "9223372036854775808"  # 2**63: past every integer column and past int64
PAST_INT32 = "2147483648"


def assert_error(response: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert detail["code"] == code, detail
    assert isinstance(detail["message"], str) and detail["message"]
    if field is not None:
        assert detail.get("field") == field, detail


async def assert_still_serving(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).status_code == 200


@pytest.fixture
async def admin(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> dict[str, str]:
    return await login(offline_api, "admin", demo.passwords["admin"])


# Routes of this module's own files: an exact 422 naming the parameter.
OUT_OF_RANGE: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/api/v1/calendar/0", None, "year"),
    ("GET", "/api/v1/calendar/9999", None, "year"),
    ("GET", "/api/v1/calendar/46101572", None, "year"),
    ("GET", f"/api/v1/calendar/{HUGE}", None, "year"),
    ("PUT", "/api/v1/calendar/1999", {"holidays": [], "workdays": [], "source": "x"}, "year"),
    ("PATCH", f"/api/v1/admin/users/{HUGE}", {"display_name": "x"}, "user_id"),
    ("PATCH", f"/api/v1/admin/users/{PAST_INT32}", {"display_name": "x"}, "user_id"),
    ("PATCH", "/api/v1/admin/users/0", {"display_name": "x"}, "user_id"),
    ("PATCH", "/api/v1/admin/users/1", {"unit_id": int(HUGE)}, "unit_id"),
    ("DELETE", f"/api/v1/admin/api-keys/{HUGE}", None, "key_id"),
    ("GET", f"/api/v1/audit?offset={HUGE}", None, "offset"),
    ("GET", "/api/v1/audit?offset=-1", None, "offset"),
    ("GET", f"/api/v1/audit?limit={HUGE}", None, "limit"),
    ("GET", f"/api/v1/policies/national?version={HUGE}", None, "version"),
    ("GET", f"/api/v1/policies/national?version={PAST_INT32}", None, "version"),
    ("POST", f"/api/v1/cases/{HUGE}/rater/reveal", {"reason": "电话回访需要"}, "case_id"),
]

# Routes of other modules: at least a 4xx ErrorBody (a 404 is truthful too), and never a 500.
OTHER_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", f"/api/v1/ratings/{HUGE}", None),
    ("GET", f"/api/v1/ratings/{PAST_INT32}", None),
    ("GET", f"/api/v1/cases/{HUGE}", None),
    ("GET", f"/api/v1/cases?offset={HUGE}", None),
    ("GET", f"/api/v1/cases?unit_id={HUGE}", None),
    ("POST", "/api/v1/cases/1/reassignment", {"to_unit_id": int(HUGE), "reason": "改派"}),
    ("POST", f"/api/v1/cases/{HUGE}/accept", {}),
]


async def test_ids_years_and_offsets_out_of_range_are_422(
    offline_api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for method, url, body, field in OUT_OF_RANGE:
        response = await offline_api.request(method, url, json=body, headers=admin)
        assert_error(response, 422, "invalid_request", field)
        await assert_still_serving(offline_api)


async def test_out_of_range_ids_on_other_routes_are_4xx(offline_api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for method, url, body in OTHER_ROUTES:
        response = await offline_api.request(method, url, json=body, headers=admin)
        assert 400 <= response.status_code < 500, (url, response.status_code, response.text)
        assert response.json()["detail"]["code"], response.text
        await assert_still_serving(offline_api)


# Dates and times in a query are ISO 8601 text; pydantic alone reads a bare number as a Unix time ("0.5" was
# 1970-01-01T00:00:00.5Z and answered 200). Found by tests/test_fuzz_api.py.
NUMBERS_FOR_TIMES: list[tuple[str, str]] = [
    ("/api/v1/cases?due_before=0.5", "due_before"),
    ("/api/v1/audit?since=1700000000", "since"),
    ("/api/v1/concentrated-problems?until=0", "until"),
    ("/api/v1/exports/table10.csv?from=0&to=2026-01-31", "from"),
    ("/api/v1/exports/table11.csv?from=2026-01-01&to=86400", "to"),
    ("/api/v1/ratings/export?from=2026-01-01&to=1e5", "to"),
]


async def test_numbers_for_dates_and_times_in_a_query_are_422(
    offline_api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for url, field in NUMBERS_FOR_TIMES:
        response = await offline_api.get(url, headers=admin)
        assert_error(response, 422, "invalid_request", field)
        assert "ISO 8601" in response.text, response.text
    # The documented forms are still taken.
    for url in (
        "/api/v1/cases?due_before=2026-12-01T00:00:00%2B08:00",
        "/api/v1/audit?since=2026-12-01T00:00:00%2B08:00",
        "/api/v1/concentrated-problems?until=2026-12-01T00:00:00%2B08:00",
        "/api/v1/exports/table10.csv?from=2026-01-01&to=2026-01-31",
    ):
        assert (await offline_api.get(url, headers=admin)).status_code == 200, url


async def test_office_hours_with_an_offset_are_422_and_write_no_version(
    offline_api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A time with an offset beside one without made the profile check compare them: a TypeError, a 500."""
    profile = (await offline_api.get("/api/v1/policies/national", headers=admin)).json()["profile"]
    versions = (await offline_api.get("/api/v1/policies/national/versions", headers=admin)).json()
    for opens, closes in (("08:30:00+08:00", "17:30"), ("08:30", "17:30Z"), ("08:30+08:00", "17:30+08:00")):
        hours = {**profile["office_hours"], "opens": opens, "closes": closes}
        body = {"profile": {**profile, "office_hours": hours}, "note": "带时区的办公时间"}
        response = await offline_api.put("/api/v1/policies/national", json=body, headers=admin)
        assert response.status_code == 422, response.text
        assert "Beijing time" in response.text and "office_hours" in response.text, response.text
    assert (await offline_api.get("/api/v1/policies/national/versions", headers=admin)).json() == versions


async def test_unknown_fields_are_refused_naming_them(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, admin: dict[str, str]
) -> None:
    api_key = {"X-API-Key": demo.api_key}
    rating = await offline_api.post("/api/v1/ratings", json={**bad_rating(), "realName": True}, headers=api_key)
    assert_error(rating, 422, "invalid_request", "realName")
    contact = bad_rating(rater={"phone": "13800001234", "wechat": "x"})
    assert_error(await offline_api.post("/api/v1/ratings", json=contact, headers=api_key), 422, "invalid_request")
    assert (await offline_api.post("/api/v1/ratings", json=contact, headers=api_key)).json()["detail"]["field"] == (
        "rater.wechat"
    )
    record = {
        "record_no": "X-1",
        "item_code": "x",
        "unit_code": "x",
        "applicant_type": "individual",
        "service_channel": "online",
        "completed_at": "2026-11-20T10:00:00+08:00",
        "priority": 1,
    }
    assert_error(
        await offline_api.post("/api/v1/service-records", json=record, headers=api_key),
        422,
        "invalid_request",
        "priority",
    )
    cases = [
        ("POST", "/api/v1/admin/users", {"username": "abc", "isAdmin": True}, "isAdmin"),
        ("PATCH", "/api/v1/admin/users/1", {"display_name": "x", "superuser": True}, "superuser"),
        ("POST", "/api/v1/admin/api-keys", {"name": "k", "source_system": "sys", "scope": "all"}, "scope"),
        ("PUT", "/api/v1/calendar/2027", {"holidays": [], "workdays": [], "source": "x", "year": 1}, "year"),
        ("PUT", "/api/v1/policies/national", {"note": "x", "profile": {}, "force": True}, "force"),
        ("PUT", "/api/v1/regions/370600/policy", {"policy_code": "national", "also": 1}, "also"),
        ("POST", "/api/v1/cases/1/rater/reveal", {"reason": "电话回访需要", "fields": ["phone"]}, "fields"),
    ]
    for method, url, body, field in cases:
        response = await offline_api.request(method, url, json=body, headers=admin)
        assert response.status_code == 422, (url, response.text)
        assert field in [e["field"] for e in response.json()["detail"]["errors"]], (url, response.text)


async def test_explicit_nulls_in_a_user_update_are_refused(
    offline_api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for field in ("role", "active", "display_name", "password"):
        response = await offline_api.patch("/api/v1/admin/users/1", json={field: None}, headers=admin)
        assert_error(response, 422, "invalid_request", field)
    # Clearing an email or a unit is what null means there, and omitting a field changes nothing.
    me = (await offline_api.get("/api/v1/admin/users", headers=admin)).json()
    reviewer = next(u for u in me if u["role"] == "reviewer")
    cleared = await offline_api.patch(f"/api/v1/admin/users/{reviewer['id']}", json={"email": None}, headers=admin)
    assert cleared.status_code == 200 and cleared.json()["email"] is None
    assert cleared.json()["role"] == "reviewer" and cleared.json()["active"] is True


async def test_rating_answers_are_bounded(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    api_key = {"X-API-Key": demo.api_key}
    for answers in (
        {f"q{i}": 1 for i in range(21)},
        {"x" * 51: 1},
        {"服务效率": "y" * 201},
        {"服务效率": {"nested": 1}},
        {"服务效率": 10**6},
    ):
        response = await offline_api.post("/api/v1/ratings", json=bad_rating(answers=answers), headers=api_key)
        assert_error(response, 422, "invalid_request")
        assert response.json()["detail"]["field"].startswith("answers"), response.text


async def test_nul_characters_are_422(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, admin: dict[str, str]
) -> None:
    body = bad_rating(comment="排队\x00两小时")
    response = await offline_api.post("/api/v1/ratings", json=body, headers={"X-API-Key": demo.api_key})
    assert_error(response, 422, "invalid_request", "comment")
    assert_error(await offline_api.get("/api/v1/audit?action=a%00b", headers=admin), 422, "invalid_request", "action")
    assert_error(await offline_api.get("/api/v1/policies/na%00tional", headers=admin), 422, "invalid_request", "path")
    assert_error(await offline_api.get("/r/abc%00def"), 422, "invalid_request", "path")
    await assert_still_serving(offline_api)


async def test_oversized_bodies_are_413(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, settings: Settings
) -> None:
    limit = settings.request_body_max_bytes
    api_key = {"X-API-Key": demo.api_key, "Content-Type": "application/json"}
    declared = await offline_api.post("/api/v1/ratings", content=b" " * (limit + 1), headers=api_key)
    assert_error(declared, 413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 1024 + 2):
            yield b" " * 1024

    streamed = await offline_api.post("/api/v1/ratings", content=chunks(), headers=api_key)
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413, "body_too_large")
    # Five megabytes of answers, the case that was once stored.
    big = bad_rating(answers={"q": "x" * (5 * 1024 * 1024)})
    assert_error(await offline_api.post("/api/v1/ratings", json=big, headers=api_key), 413, "body_too_large")
    # Just under the limit is not refused for its size.
    fits = await offline_api.post("/api/v1/ratings", content=b" " * (limit - 10) + b"{}", headers=api_key)
    assert fits.status_code == 422
    await assert_still_serving(offline_api)


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers)
    assert response.headers.get("referrer-policy") in ("no-referrer", "strict-origin-when-cross-origin")
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"):
        assert directive in csp, csp
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src is None or "unsafe-inline" not in script_src.group(1), csp
    assert re.fullmatch(r"[A-Za-z0-9._:-]{8,64}", response.headers["x-request-id"])


async def test_security_headers_on_every_kind_of_answer(offline_api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for response in (
        await offline_api.get("/api/v1/auth/me", headers=admin),
        await offline_api.get("/api/v1/auth/me"),
        await offline_api.get("/no/such/path"),
        await offline_api.get("/r/x"),
        await offline_api.get("/docs"),
        await offline_api.get("/openapi.json"),
        await offline_api.get("/api/v1/calendar/0", headers=admin),
    ):
        assert_security_headers(response)


async def test_docs_load_nothing_from_outside(offline_api: httpx.AsyncClient) -> None:
    page = await offline_api.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page.text)
    assert len(assets) >= 3, page.text
    assert "<script>" not in page.text, "an inline script would need 'unsafe-inline' in the CSP"
    for url in assets:
        assert not url.startswith(("http://", "https://", "//")), url
        asset = await offline_api.get(url)
        assert asset.status_code == 200, url
        assert_security_headers(asset)
    init = await offline_api.get("/docs/swagger-init.js")
    assert "/openapi.json" in init.text and "validatorUrl: null" in init.text
    assert (await offline_api.get("/redoc")).status_code == 404


async def test_an_unexpected_error_is_a_json_500_with_its_request_id(
    settings: Settings, db: Database, unreachable_temporal: TemporalConnection, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, db, unreachable_temporal)

    async def explode() -> None:
        raise RuntimeError("secret internal state 0xdeadbeef")

    app.add_api_route("/api/v1/explode", explode, methods=["GET"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        with caplog.at_level(logging.ERROR, logger="api.middleware"):
            response = await client.get("/api/v1/explode")
        assert response.status_code == 500
        request_id = response.headers["x-request-id"]
        assert response.json() == {
            "detail": {
                "code": "internal_error",
                "message": response.json()["detail"]["message"],
                "request_id": request_id,
            }
        }
        assert request_id in response.json()["detail"]["message"]
        for leak in ("Traceback", "RuntimeError", "0xdeadbeef", "explode"):
            assert leak not in response.text
        assert_security_headers(response)
        records = [r for r in caplog.records if r.name == "api.middleware" and request_id in r.getMessage()]
        assert len(records) == 1 and records[0].exc_info is not None
        assert "/api/v1/explode" in records[0].getMessage()

        # A sane incoming id is kept (so a proxy's id follows the request); an odd one is replaced.
        kept = await client.get("/api/v1/explode", headers={"X-Request-ID": "edge-1234abcd"})
        assert kept.headers["x-request-id"] == "edge-1234abcd" == kept.json()["detail"]["request_id"]
        odd = await client.get("/healthz", headers={"X-Request-ID": "bad id\r\nSet-Cookie: x"})
        assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])
        assert (await client.get("/healthz")).status_code == 200


async def test_the_access_log_names_the_route_not_the_path(
    offline_api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = "SeCrEt-ToKeN-abcdefghijklmnop"
    with caplog.at_level(logging.INFO, logger="hcp.access"):
        response = await offline_api.get(f"/r/{token}?q=also-secret")
    lines = [r.getMessage() for r in caplog.records if r.name == "hcp.access"]
    assert lines == [
        f"GET /r/{{token}} {response.status_code} {lines[0].split()[3]} request_id={response.headers['x-request-id']}"
    ]
    assert token not in lines[0] and "also-secret" not in lines[0]
