"""Waiting for what happens beside the test: a condition, a delivered mail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import TypeVar

from runtime.mail_sink import MailSink

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Poll an async check until it returns a truthy value; fail with the last value after timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


async def delivered(
    mailbox: MailSink, address: str, *, subject: str = "", count: int = 1, timeout: float = 15.0
) -> list[EmailMessage]:
    """Mail to an address (with `subject` in its subject), once at least `count` have arrived.

    Notices go out beside the case steps, so a test waits for them rather than expecting them at once.
    """

    async def arrived() -> list[EmailMessage]:
        found = [m for m in mailbox.to(address) if subject in str(m["Subject"])]
        return found if len(found) >= count else []

    return await eventually(arrived, timeout=timeout)
