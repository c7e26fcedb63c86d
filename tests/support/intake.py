"""Bulk intake helpers: API keys of configured source systems, counting what intake wrote."""

from __future__ import annotations

import httpx
from sqlmodel import func, select

from models.db import Database
from models.services import ServiceRecord
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


async def add_records(db: Database, count: int, like: str = "DEMO-0001", prefix: str = "IMP") -> list[str]:
    """`count` more service records shaped like `like` (same unit, item, staff), numbered IMP-0001…"""
    async with db.session() as session:
        model = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == like))).one()
        numbers = [f"{prefix}-{n:04d}" for n in range(1, count + 1)]
        for number in numbers:
            fields = model.model_dump(exclude={"id", "record_no", "applicant_phone_check"})
            session.add(ServiceRecord(record_no=number, **fields))
        await session.commit()
    return numbers
