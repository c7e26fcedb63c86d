"""The probes: /healthz (the process lives) and /readyz (it can serve: database, Temporal, migrations).

Both are open, like a load balancer's or an orchestrator's probe needs them, and say nothing about data.
/readyz runs its checks at once, each bounded by runtime/readiness.py's short timeout, and names
each check's state, never a host, a port or a driver's message.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import TemporalDep, get_db
from models.db import Database
from runtime.readiness import MigrationHeads, database_checks, is_ready, migration_heads, temporal_check

router = APIRouter(tags=["ops"])


class ReadinessChecks(BaseModel):
    """Each dependency's state: "ok", or why not (unreachable, timeout, behind: db …, code …)."""

    database: str = Field(examples=["ok", "unreachable", "timeout"])
    temporal: str = Field(examples=["ok", "unreachable", "timeout"])
    migrations: str = Field(examples=["ok", "behind: db 0011, code 0012", "unknown"])


class Readiness(BaseModel):
    """Whether this API process can serve, and each check's state."""

    status: Literal["ready", "unready"]
    checks: ReadinessChecks


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness probe; deliberately open and says nothing about data."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down, hung or behind: see checks"}},
)
async def readyz(
    request: Request, db: Annotated[Database, Depends(get_db)], temporal: TemporalDep
) -> Readiness | JSONResponse:
    """Readiness probe: 200 when the database answers at this code's migration head and Temporal answers."""
    heads: MigrationHeads = request.app.state.migration_heads
    stored, temporal_state = await asyncio.gather(database_checks(db.engine, heads), temporal_check(temporal))
    checks = {**stored, "temporal": temporal_state}
    readiness = Readiness(
        status="ready" if is_ready(checks) else "unready", checks=ReadinessChecks.model_validate(checks)
    )
    if readiness.status == "ready":
        return readiness
    return JSONResponse(readiness.model_dump(), status_code=503)


def install_health(app: FastAPI) -> None:
    """The probes' routes; the migrations' head is read here, once, when the app is built."""
    app.state.migration_heads = migration_heads()
    app.include_router(router)
