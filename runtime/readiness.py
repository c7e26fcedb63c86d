"""Readiness checks shared by the API's /readyz and the worker's probe listener.

Each check answers within `PROBE_TIMEOUT_SECONDS`, so a hung dependency makes a probe say "timeout"
instead of hanging the probe. A check's answer is a short state ("ok", "unreachable", "timeout",
"behind: db 0011, code 0012"...), never an error message: driver messages name hosts, ports and users.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import TypeVar

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from migrations import alembic_config
from runtime.temporal import TemporalConnection

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2.0
OK = "ok"
VERSION_TABLE = "alembic_version"

T = TypeVar("T")


@dataclass(frozen=True)
class MigrationHeads:
    """The migrations this code ships: their head(s), and every revision it knows."""

    heads: frozenset[str]
    known: frozenset[str]

    def state_of(self, applied: set[str]) -> str:
        """How the database's applied revision(s) stand to this code's head."""
        code = ", ".join(sorted(self.heads))
        db = ", ".join(sorted(applied))
        if applied == self.heads:
            return OK
        if not applied:
            return f"not migrated: code {code}"
        if applied <= self.known:
            return f"behind: db {db}, code {code}"
        # A revision this code does not know: newer code migrated the database (a rolling deployment).
        return f"ahead: db {db}, code {code}"


def migrations_acceptable(state: str) -> bool:
    """Ready at the head, and also ahead of it: older code keeps serving while a release rolls out."""
    return state == OK or state.startswith("ahead:")


@lru_cache(maxsize=1)
def migration_heads() -> MigrationHeads:
    """Read once per process from migrations/versions (probes compare against it, never re-read it)."""
    script = ScriptDirectory.from_config(alembic_config(""))
    return MigrationHeads(
        heads=frozenset(script.get_heads()),
        known=frozenset(rev.revision for rev in script.walk_revisions()),
    )


async def _applied_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        if not await conn.run_sync(lambda sync: sa.inspect(sync).has_table(VERSION_TABLE)):
            return set()
        rows = await conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
        return {str(row[0]) for row in rows}


async def _bounded(name: str, check: Awaitable[T]) -> tuple[str, T | None]:
    """("ok", result), or the state a failing or hanging check leaves (its class is logged, not its text)."""
    try:
        return OK, await asyncio.wait_for(check, timeout=PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        log.warning("readiness: %s did not answer within %.0f s", name, PROBE_TIMEOUT_SECONDS)
        return "timeout", None
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the probe itself must answer
        log.warning("readiness: %s unreachable (%s)", name, type(exc).__name__)
        return "unreachable", None


async def database_checks(engine: AsyncEngine, heads: MigrationHeads) -> dict[str, str]:
    """The database's state and, when it answers, how its migrations stand to this code."""
    state, applied = await _bounded("database", _applied_revisions(engine))
    if applied is None:
        return {"database": state, "migrations": "unknown"}
    return {"database": OK, "migrations": heads.state_of(applied)}


async def temporal_check(temporal: TemporalConnection) -> str:
    """Whether the Temporal frontend answers its health check (connecting first if need be)."""

    async def healthy() -> bool:
        client = await temporal.client()
        return await client.service_client.check_health(timeout=timedelta(seconds=PROBE_TIMEOUT_SECONDS))

    state, answered = await _bounded("temporal", healthy())
    if state == OK and not answered:
        return "unhealthy"
    return state


def is_ready(checks: dict[str, str]) -> bool:
    """Every check ok (migrations may also be ahead)."""
    return all(migrations_acceptable(state) if name == "migrations" else state == OK for name, state in checks.items())
