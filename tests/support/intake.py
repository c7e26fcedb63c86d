"""Bulk intake helpers: API keys of configured source systems, counting what intake wrote."""

from __future__ import annotations

import httpx
from sqlmodel import func, select

from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.http import login


async def source_key(api: httpx.AsyncClient, demo: DemoCredentials, source_system: str) -> dict[str, str]:
    """X-API-Key headers of a new key for `source_system`, issued through the admin API."""
    admin = await login(api, "admin", demo.passwords["admin"])
    made = await api.post(
        "/api/v1/admin/api-keys", json={"name": f"{source_system} 测试", "source_system": source_system}, headers=admin
    )
    assert made.status_code == 201, made.text
    return {"X-API-Key": made.json()["key"]}


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()
