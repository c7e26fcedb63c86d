"""The soak's HTTP side: every answer counted, what a restart interrupts retried, what the load did kept in a ledger.

A request that loses its connection (an API killed or stopping) or is answered 503 is sent again as
it was — the same body, the same Idempotency-Key — until it gets another answer, so a retried action
is still one action; the books then check that it was taken exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

# How long one action keeps being retried through a restart before the soak counts it as lost.
GIVE_UP_AFTER = 180.0
_BACKOFF_MAX = 2.0


@dataclass
class CaseInfo:
    """A case the load opened, as the client knows it."""

    id: int
    rating_id: int
    unit_id: int
    rater_email: str | None
    rater_phone: str | None
    rng: random.Random  # the case's own draws: its plan and the pauses of the people working it
    round: int = 1
    steps_sent: int = 0  # numbers the Idempotency-Keys of its steps


@dataclass
class StepTaken:
    """A step the API said was taken (200, or 202 then completed)."""

    case_id: int
    step: str
    requester: str  # "user:<id>"
    key: str  # its Idempotency-Key
    not_taken_first: bool  # answered 503 "not taken" at least once before it was taken


@dataclass
class Ledger:
    """What the load did and saw, for the books."""

    ratings: dict[int, bool] = field(default_factory=dict)  # rating id → bad, for every 201
    cases: dict[int, CaseInfo] = field(default_factory=dict)
    steps: list[StepTaken] = field(default_factory=list)
    rater_answers: list[tuple[int, int]] = field(default_factory=list)  # (case id, round) answered
    plans: Counter[str] = field(default_factory=Counter)  # how many cases followed each plan
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # (what, status) of every answer
    lost_connections: int = 0
    not_taken_retried: int = 0  # 503 answers that were retried
    unexpected: list[str] = field(default_factory=list)  # answers the load did not expect: each fails the books

    def fault(self, text: str) -> None:
        """Something the load did not expect: it fails the books."""
        self.unexpected.append(text)


@dataclass
class Answer:
    """The answer an action finally got, and what happened on the way."""

    response: httpx.Response
    lost: bool  # the connection was lost at least once: an earlier attempt may have been taken
    not_taken: bool  # a 503 came first


class Client:
    """Sends requests to the API processes in turn, counting each answer and retrying interruptions."""

    def __init__(self, bases: list[str], ledger: Ledger) -> None:
        self._bases = itertools.cycle(bases)
        self.ledger = ledger
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0))

    async def close(self) -> None:
        """Close the connections."""
        await self.http.aclose()

    async def send(
        self,
        what: str,
        method: str,
        path: str,
        *,
        http: httpx.AsyncClient | None = None,
        retry_503: bool = True,
        **kwargs: Any,
    ) -> Answer:
        """One action: sent until it gets an answer other than a lost connection (or a 503, if retried)."""
        started = time.monotonic()
        lost = not_taken = False
        delay = 0.25
        while True:
            try:
                response = await (http or self.http).request(method, next(self._bases) + path, **kwargs)
            except httpx.TransportError:
                self.ledger.lost_connections += 1
                lost = True
            else:
                self.ledger.answers[(what, response.status_code)] += 1
                if response.status_code != 503 or not retry_503:
                    return Answer(response, lost, not_taken)
                not_taken = True
                self.ledger.not_taken_retried += 1
                delay = min(float(response.headers.get("retry-after", "1")), _BACKOFF_MAX)
            if time.monotonic() - started > GIVE_UP_AFTER:
                raise GaveUp(
                    f"{what} {method} {path}: no answer but lost connections and 503s for {GIVE_UP_AFTER:.0f}s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)


class GaveUp(Exception):
    """An action that got no real answer for GIVE_UP_AFTER seconds."""


class Person:
    """A signed-in user of the API: logs in on first use and again when the token expires."""

    def __init__(self, client: Client, username: str, password: str, user_id: int) -> None:
        self.client, self.username, self._password, self.user_id = client, username, password, user_id
        self._token = ""
        self._lock = asyncio.Lock()

    @property
    def requester(self) -> str:
        """How a step request names this person (casesteprequest.requester, the audit's actor)."""
        return f"user:{self.user_id}"

    async def headers(self, renew: bool = False) -> dict[str, str]:
        """The bearer header, logging in first (again, with `renew`)."""
        async with self._lock:
            if renew or not self._token:
                form = {"username": self.username, "password": self._password}
                answer = await self.client.send("login", "POST", "/api/v1/auth/token", data=form)
                if answer.response.status_code != 200:
                    raise GaveUp(
                        f"login of {self.username}: {answer.response.status_code} {answer.response.text[:200]}"
                    )
                self._token = answer.response.json()["access_token"]
            return {"Authorization": f"Bearer {self._token}"}

    async def send(self, what: str, method: str, path: str, **kwargs: Any) -> Answer:
        """A request with this person's token; once more with a new token if it had expired."""
        extra = kwargs.pop("headers", {})
        answer = await self.client.send(what, method, path, headers={**await self.headers(), **extra}, **kwargs)
        if answer.response.status_code == 401:
            answer = await self.client.send(what, method, path, headers={**await self.headers(True), **extra}, **kwargs)
        return answer
