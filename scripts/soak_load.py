"""The soak's business system: it registers each transaction and rates it, at a steady rate, a share badly.

Every bad rating's case is handed to the people who work it (scripts/soak_cases.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

from soak_cases import CaseWork, Refused, Stopped
from soak_client import CaseInfo, Client, Person

from runtime.mail_sink import MailSink

UNITS = {"YT-SCJ": "370600-XK-0003", "YT-RSJ": "370600-GG-0002"}  # unit code → an item it handles


class Load(CaseWork):
    """The business system's stream of ratings, and the people working the cases it opens."""

    def __init__(
        self,
        client: Client,
        people: dict[str, Person],
        units: dict[str, int],
        api_key: str,
        sink: MailSink,
        think: float,
    ) -> None:
        super().__init__(client, people, units, sink, think)
        self.api_key = api_key
        self.tasks: set[asyncio.Task[None]] = set()

    async def post_ratings(self, rate: float, bad_share: float, seed: int) -> None:
        """Register a transaction and rate it, `rate` times a second, until the load stops."""
        interval, next_at, n = 1 / rate, asyncio.get_running_loop().time(), 0
        while not self.stopping.is_set():
            n += 1
            # Each rating draws from its own generator: a seed replays the same draws however requests interleave.
            rng = random.Random(f"{seed}:{n}")
            self._spawn(self._rate(f"SOAK-{seed}-{n:06d}", n, rng.random() < bad_share, rng))
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), max(0.0, next_at - asyncio.get_running_loop().time()))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None and not isinstance(exc, Stopped | Refused):
            self.ledger.fault(f"{type(exc).__name__}: {exc}")

    async def drain(self) -> None:
        """Wait for every rating and case plan in flight to finish its current action."""
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    async def _rate(self, record_no: str, n: int, bad: bool, rng: random.Random) -> None:
        unit_code = "YT-SCJ" if rng.random() < 0.7 else "YT-RSJ"
        headers = {"X-API-Key": self.api_key}
        record = {
            "record_no": record_no, "item_code": UNITS[unit_code], "unit_code": unit_code,
            "applicant_type": "individual", "service_channel": "online",
            "completed_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        }  # fmt: skip
        registered = await self.client.send(
            "register record", "POST", "/api/v1/service-records", json=record, headers=headers
        )
        code = registered.response.status_code
        if not (code == 201 or (code == 409 and registered.lost)):  # 409 only after a lost answer: it was taken
            self.ledger.fault(f"register {record_no}: {code} {registered.response.text[:200]}")
            return
        rating: dict[str, Any] = {"record_no": record_no, "channel": "pc", "target": "item"}
        email = phone = None
        if not bad:
            rating["level"] = rng.choice(["very_satisfied", "satisfied", "basically_satisfied"])
        elif rng.random() < 0.1:  # anonymous, no way to be told: closed once the unit has answered
            rating.update(level="dissatisfied", real_name=False, comment="办理太慢")
        else:
            email, phone = f"soak.rater{n}@example.com", f"139{n:08d}"
            rating.update(
                level=rng.choice(["dissatisfied", "very_dissatisfied"]), real_name=True,
                comment="窗口排队两个小时，材料被退回三次", rater={"name": f"评价人{n}", "phone": phone, "email": email},
            )  # fmt: skip
        keyed = {**headers, "Idempotency-Key": f"soak-rating-{record_no}"}
        answer = await self.client.send("rating", "POST", "/api/v1/ratings", json=rating, headers=keyed)
        if answer.response.status_code != 201:
            self.ledger.fault(f"rating {record_no}: {answer.response.status_code} {answer.response.text[:200]}")
            return
        body = answer.response.json()
        self.ledger.ratings[body["rating_id"]] = body["is_bad"]
        if body["is_bad"] != bad or (bad and body["case_id"] is None):
            self.ledger.fault(f"rating {record_no}: answered {body}, sent bad={bad}")
            return
        if bad:
            unit_id = self.units[unit_code]
            case = CaseInfo(body["case_id"], body["rating_id"], unit_id, email, phone, rng)
            self.ledger.cases[case.id] = case
            self._spawn(self.work(case))
