"""The outbox relay: starts the case workflow of every bad rating the API could not hand to Temporal.

The API writes an outbox row with each bad rating and tries to start the workflow at once. When
that fails (Temporal down, a crash between commit and start) the row stays undispatched and this
relay, running inside the worker, starts it later. Starting twice is harmless: the workflow id
comes from the rating id and the conflict policy is "use existing".
"""

from __future__ import annotations

import asyncio
import logging

from sqlmodel import col, select
from temporalio.client import Client

from config import Settings
from models.case.vocabulary import CaseWorkflowInput
from models.db import Database, utcnow
from models.outbox import START_CASE, OutboxEntry
from runtime.stopping import sleep_unless_stopped
from runtime.temporal import start_case_workflow

log = logging.getLogger(__name__)

BATCH_SIZE = 100


class OutboxRelay:
    def __init__(self, db: Database, client: Client, settings: Settings) -> None:
        self._db = db
        self._client = client
        self._settings = settings

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Start every pending case workflow (oldest first, one batch). Returns how many were dispatched.

        A shutdown (`stop`) ends the batch between two entries: each entry's start and its record are
        one transaction, never cut in the middle.
        """
        async with self._db.session() as session:
            pending = (
                await session.exec(
                    select(OutboxEntry)
                    .where(OutboxEntry.dispatched_at == None, OutboxEntry.kind == START_CASE)  # noqa: E711
                    .order_by(col(OutboxEntry.id))
                    .limit(BATCH_SIZE)
                )
            ).all()
            dispatched = 0
            for entry in pending:
                if stop is not None and stop.is_set():
                    break
                try:
                    await start_case_workflow(
                        self._client,
                        entry.payload["workflow_id"],
                        CaseWorkflowInput.model_validate(entry.payload["input"]),
                        self._settings.temporal_task_queue,
                    )
                except Exception as exc:  # noqa: BLE001 - any failure leaves the row for the next pass
                    entry.attempts += 1
                    entry.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    session.add(entry)
                    await session.commit()
                    log.warning("outbox %s: could not start case %s: %s", entry.id, entry.case_id, entry.last_error)
                    break
                entry.dispatched_at = utcnow()
                entry.attempts += 1
                session.add(entry)
                await session.commit()
                dispatched += 1
            return dispatched

    async def run(self, stop: asyncio.Event) -> None:
        """Drain the outbox every few seconds until stop is set."""
        interval = self._settings.outbox_relay_interval_seconds
        while not stop.is_set():
            try:
                count = await self.drain_once(stop)
                if count:
                    log.info("outbox relay started %d case workflow(s)", count)
            except Exception:  # noqa: BLE001 - a DB hiccup must not kill the relay
                log.exception("outbox relay pass failed")
            await sleep_unless_stopped(stop, interval)
