"""The run-wide PII watch really sees what it is meant to see (so its silence means something)."""

from __future__ import annotations

import logging

import httpx

from tests.pii_watch import WATCH


async def test_the_watch_sees_pii_in_logs_and_error_responses() -> None:
    before = len(WATCH.sightings)
    logging.getLogger("hcp.test").info("calling back 13912345678")
    request = httpx.Request("POST", "http://testserver/api/v1/ratings")
    await WATCH.response_hook(httpx.Response(422, text='{"input": "zhang.sanfeng@example.com"}', request=request))
    await WATCH.response_hook(httpx.Response(200, text="13912345678 revealed to a handler", request=request))
    seen = WATCH.sightings[before:]
    # Take the planted sightings back out so the run itself stays clean.
    del WATCH.sightings[before:]
    assert len(seen) == 2
    assert seen[0].startswith("log hcp.test") and "422 response to POST /api/v1/ratings" in seen[1]
