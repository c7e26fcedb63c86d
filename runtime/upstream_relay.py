"""The upstream relay: pushes every pending rating and case result to the platform, in the worker.

Push rows are written with what they report (models/upstream.py); this loop claims and sends them
(activities/upstream_sender.py), oldest due first, `HCP_UPSTREAM_RELAY_CONCURRENCY` at a time: each
push waits on a database commit or two and on the platform, so a few in flight multiply the rate.
When an attempt fails in a way that may pass (the platform down, slow or overloaded) the pass
starts no more: the push that failed waits for its backoff and the rest for the next pass, instead
of each timing out in turn. With reporting off (no HCP_UPSTREAM_URL) the relay does not run.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from activities.upstream_sender import UpstreamSender
from config import Settings
from models.db import Database
from models.upstream import PushStatus
from runtime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)

BATCH_SIZE = 100


class UpstreamRelay:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    async def drain_once(self, sender: UpstreamSender, stop: asyncio.Event | None = None) -> int:
        """Send every push that is due now, a few at a time; after a failure that may pass, start no more.

        A shutdown (`stop`) claims nothing more either; the pushes under way finish and are recorded.
        Returns how many were tried.
        """
        tried = 0
        failing = False
        limit = asyncio.Semaphore(self._settings.upstream_relay_concurrency)

        async def send(push_id: int) -> None:
            nonlocal tried, failing
            async with limit:
                if failing or (stop is not None and stop.is_set()):
                    return
                push = await sender.claim(push_id)
                if push is None:  # another relay took it
                    return
                tried += 1
                if await sender.deliver(push) == PushStatus.PENDING:
                    failing = True

        while True:
            due = await sender.due(BATCH_SIZE)
            before = tried
            await asyncio.gather(*(send(push_id) for push_id in due))
            if failing or len(due) < BATCH_SIZE or tried == before or (stop is not None and stop.is_set()):
                return tried

    async def run(self, stop: asyncio.Event) -> None:
        """Push until stop is set."""
        if not self._settings.upstream_enabled:
            log.info("upstream reporting is off (no HCP_UPSTREAM_URL): ratings and case results are kept as skipped")
            return
        interval = self._settings.upstream_relay_interval_seconds
        # No redirects: a platform that moved is a configuration to fix, not a place to send reports blindly.
        async with httpx.AsyncClient(follow_redirects=False) as client:
            sender = UpstreamSender(self._db, self._settings, client)
            while not stop.is_set():
                try:
                    await self.drain_once(sender, stop)
                except Exception as exc:  # noqa: BLE001 - a database hiccup must not kill the relay
                    log.warning("upstream relay pass failed: %s", type(exc).__name__)
                await sleep_unless_stopped(stop, interval)
