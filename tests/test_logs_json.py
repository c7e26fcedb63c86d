"""HCP_LOG_FORMAT=json: one JSON object per line, with the request's id, route and case, and no rater PII."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runtime.logs import JsonFormatter
from runtime.seed import DemoCredentials
from tests.pii_watch import PII_NEEDLES, WATCH
from tests.support.http import bad_rating, login


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged during the test, as HCP_LOG_FORMAT=json writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]  # each line alone is one JSON object


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_request_logs_json_lines_with_its_id_route_and_case(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, json_log: io.StringIO
) -> None:
    # Temporal is unreachable: intake leaves the case to the outbox relay and says so, naming the case.
    created = await offline_api.post(
        "/api/v1/ratings",
        json=bad_rating(),
        headers={"X-API-Key": demo.api_key, "X-Request-ID": "intake-req-0001"},
    )
    assert created.status_code == 201
    case_id = created.json()["case_id"]
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    read = await offline_api.get(f"/api/v1/cases/{case_id}", headers={**staff, "X-Request-ID": "case-read-0002"})
    assert read.status_code == 200
    await offline_api.get("/r/a-rater-token-not-for-logs")

    # The test's own HTTP client (httpx) logs the URLs it calls; the app's lines are the rest.
    lines = [line for line in lines_of(json_log) if line["logger"] != "httpx"]
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= line.keys()
        assert line["timestamp"].endswith("+00:00")
    left = [line for line in lines if "left to the outbox relay" in line["message"]]
    assert left and all(
        line["request_id"] == "intake-req-0001"
        and line["case_id"] == case_id
        and line["route"] == "/api/v1/ratings"
        and line["level"] == "WARNING"
        for line in left
    ), left
    access = [line for line in lines if line["logger"] == "hcp.access" and line["request_id"] == "case-read-0002"]
    assert access == [
        {
            **access[0],
            "route": "/api/v1/cases/{case_id}",
            "case_id": case_id,
            "method": "GET",
            "status": 200,
        }
    ]
    assert isinstance(access[0]["duration_ms"], float)
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    assert "a-rater-token-not-for-logs" not in text
    assert not [needle for needle in PII_NEEDLES if needle in text or json.dumps(needle)[1:-1] in text]
    assert '"route": "/r/{token}"' in text


async def test_only_the_known_fields_leave_a_record() -> None:
    record = logging.LogRecord("hcp.test", logging.INFO, __file__, 1, "case %s reminded", (7,), None)
    record.case_id = 7
    record.rater_phone = "13912345678"  # an extra that is not a log field is never written
    record.status = "not a number"  # a known field of the wrong type is left out too
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "case 7 reminded" and line["case_id"] == 7
    assert set(line) == {"timestamp", "level", "logger", "message", "case_id"}


async def test_the_pii_watch_reads_the_json_fields_too() -> None:
    before = len(WATCH.sightings)
    # The message is clean; the contact is in a field only the JSON line writes.
    logging.getLogger("hcp.test").info("reading a route", extra={"route": "/api/v1/13912345678"})
    seen = WATCH.sightings[before:]
    del WATCH.sightings[before:]  # planted: the run itself stays clean
    assert len(seen) == 1 and seen[0].startswith("JSON log hcp.test"), seen
