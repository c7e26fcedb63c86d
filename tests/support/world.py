"""The world of the case tests: a worker on the time-skipping server, the demo data, an offline API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import httpx
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.db import Database
from runtime.mail_sink import MailSink
from runtime.seed import DemoCredentials
from tests.support.case_driver import CaseDriver, use_policy


@dataclass
class World:
    """A running worker on the time-skipping server, with the demo data and an offline API for intake."""

    env: WorkflowEnvironment
    api: httpx.AsyncClient
    demo: DemoCredentials
    db: Database
    settings: Settings
    mailbox: MailSink

    async def open(self, policy: str | None = None, **rating: object) -> CaseDriver:
        """Open a case through intake and the outbox relay, optionally under another policy profile."""
        if policy:
            await use_policy(self.db, policy)
        return await CaseDriver.open(self.env, self.api, self.demo, self.db, self.settings, **rating)

    async def sleep(self, duration: timedelta) -> None:
        await self.env.sleep(duration)
