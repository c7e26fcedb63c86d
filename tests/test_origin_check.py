"""The Origin check of form posts, as browsers really send it (Chromium sends Origin: null under no-referrer)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from api.origin import same_origin
from config import Settings


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "method": "POST", "path": "/login", "headers": [(b"host", b"127.0.0.1:8000"), *raw],
             "scheme": "http", "server": ("127.0.0.1", 8000), "query_string": b""}  # fmt: skip
    return Request(scope)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, True),  # not a browser: the CSRF token decides
        ({"Origin": "http://127.0.0.1:8000"}, True),
        ({"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, True),  # Chromium under Referrer-Policy: no-referrer
        ({"Origin": "null"}, False),  # a sandboxed frame or a data: page, and no word from the browser
        ({"Origin": "null", "Sec-Fetch-Site": "cross-site"}, False),
        ({"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, False),
        ({"Origin": "https://evil.example"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),  # another subdomain is another site's form
    ],
)
def test_same_origin(headers: dict[str, str], expected: bool) -> None:
    settings = Settings(public_base_url="http://127.0.0.1:8000")
    assert same_origin(_request(headers), settings) is expected
