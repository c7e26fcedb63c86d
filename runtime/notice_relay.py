"""The notice relay: sends every notice the case timeline recorded, in the worker, beside the cases.

Notices are written with the timeline event that causes them (activities/notices.py); this loop
claims and sends them (activities/notice_sender.py). It is woken at once when the worker's own
activities record new notices, and otherwise looks every few seconds — for notices other workers
wrote, for retries whose backoff has passed and for claims a dead worker left behind.
"""

from __future__ import annotations

import asyncio
import logging

from activities.notice_sender import NoticeSender
from config import Settings
from runtime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)


class NoticeRelay:
    def __init__(self, sender: NoticeSender, settings: Settings, wake: asyncio.Event) -> None:
        self._sender = sender
        self._settings = settings
        self._wake = wake

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Send every notice that is due now (a few at a time). Returns how many this relay handled.

        A shutdown (`stop`) claims nothing more: the sends under way finish and are recorded, the
        rest stay pending for the next worker.
        """
        handled = 0
        limit = asyncio.Semaphore(self._settings.notice_relay_concurrency)

        def stopping() -> bool:
            return stop is not None and stop.is_set()

        async def send(notice_id: int) -> None:
            nonlocal handled
            async with limit:
                if stopping():
                    return
                if await self._sender.claim(notice_id):
                    await self._sender.deliver(notice_id)
                    handled += 1

        while True:
            due = await self._sender.due()
            before = handled
            await asyncio.gather(*(send(notice_id) for notice_id in due))
            if len(due) < 100 or handled == before or stopping():
                return handled

    async def run(self, stop: asyncio.Event) -> None:
        """Send notices until stop is set."""
        interval = self._settings.notice_relay_interval_seconds
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.drain_once(stop)
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not kill the relay; the next pass retries
                # The class only: driver messages can quote the row they were writing.
                log.warning("notice relay pass failed: %s", type(exc).__name__)
            if self._wake.is_set():
                continue
            waiter = asyncio.create_task(self._wake.wait())
            stopped = asyncio.create_task(sleep_unless_stopped(stop, interval))
            await asyncio.wait({waiter, stopped}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopped.cancel()
