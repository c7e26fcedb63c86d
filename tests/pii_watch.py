"""Watches a whole test run for rater PII in logs, error responses and workflow histories.

conftest.py installs the log handler and the response hook; at the end of the session any sighting
fails the run, naming where it was seen.
"""

from __future__ import annotations

import json
import logging

import httpx

from runtime.logs import JsonFormatter

# Every rater name, phone and email the tests use. Keep in sync when adding test raters.
PII_NEEDLES = [
    "张三丰",
    "13912345678",
    "zhang.sanfeng@example.com",
    "李四",
    "13700000000",
    "13800001234",
    "zhangsan@example.com",
    "13900002222",
]


class PiiWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.sightings: list[str] = []
        self._json = JsonFormatter()

    def scan(self, where: str, text: str) -> None:
        for needle in PII_NEEDLES:
            if needle in text or json.dumps(needle)[1:-1] in text:
                self.sightings.append(f"{where}: {needle!r} in {text[:200]!r}")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log call must not break the watch
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        before = len(self.sightings)
        self.scan(f"log {record.name}", message)
        if len(self.sightings) > before:
            return
        # The line HCP_LOG_FORMAT=json would write: its fields besides the message (route, extras) too.
        try:
            line = self._json.format(record)
        except Exception:  # noqa: BLE001 - as above
            return
        self.scan(f"JSON log {record.name}", line)

    async def response_hook(self, response: httpx.Response) -> None:
        """httpx event hook: error responses must not carry PII."""
        if response.status_code >= 400:
            await response.aread()
            self.scan(
                f"{response.status_code} response to {response.request.method} {response.request.url.path}",
                response.text,
            )


WATCH = PiiWatch()
