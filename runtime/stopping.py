"""Waiting that a shutdown can cut short, and a shutdown that waits only so long."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep for `seconds` or until `stop` is set. True if stopped."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def finish_within(tasks: Iterable[asyncio.Task[Any]], seconds: float) -> list[asyncio.Task[Any]]:
    """Let the tasks finish for up to `seconds`, then cancel the rest and wait for them. Returns those cancelled."""
    tasks = list(tasks)
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return [task for task in tasks if task in pending]
