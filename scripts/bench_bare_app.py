"""The baseline of the intake benchmark: a bare FastAPI endpoint doing one INSERT through a connection pool.

Served by uvicorn exactly like the real API (one process), against the same PostgreSQL database, so
the benchmark's ratio says how much of the real endpoint's cost is our own work. Reads the database
URL from HCP_BENCH_DATABASE_URL (an asyncio SQLAlchemy URL).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ENGINE = create_async_engine(os.environ["HCP_BENCH_DATABASE_URL"], pool_size=32, max_overflow=0)
_INSERT = text(
    "INSERT INTO bench_bare_rating (record_no, level, channel) VALUES (:record_no, :level, :channel) RETURNING id"
)


class BareRating(BaseModel):
    record_no: str
    level: str
    channel: str


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    async with ENGINE.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS bench_bare_rating (id serial PRIMARY KEY, record_no varchar(64) UNIQUE, "
                "level varchar(32), channel varchar(32), submitted_at timestamptz DEFAULT now())"
            )
        )
    yield
    await ENGINE.dispose()


app = FastAPI(lifespan=lifespan)


@app.post("/ratings", status_code=201)
async def rate(body: BareRating) -> dict[str, Any]:
    async with ENGINE.begin() as conn:
        rating_id = (await conn.execute(_INSERT, body.model_dump())).scalar_one()
    return {"rating_id": rating_id}
