"""Bundles of service records (一次办多件, 一件事) registered through the API, and what a rating of one wrote."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from models.db import Database
from models.deadlines import CHINA_TZ
from models.ratings import Rating
from models.services import ServiceRecord
from runtime.seed import DemoCredentials

# The demo data: 市场监管局 (YT-SCJ, window staff SCJ-001) and 人社局 (YT-RSJ, RSJ-001), one region.
WINDOW_RECORD: dict[str, Any] = {
    "item_code": "370600-XK-0001",
    "unit_code": "YT-SCJ",
    "staff_no": "SCJ-001",
    "applicant_type": "individual",
    "service_channel": "window",
    "applicant_phone": "13800001234",
}


def just_completed() -> str:
    """An hour ago, China time: well inside every profile's rating window."""
    return (datetime.now(CHINA_TZ) - timedelta(hours=1)).isoformat()


async def register(api: httpx.AsyncClient, demo: DemoCredentials, record_no: str, **change: Any) -> httpx.Response:
    body = {**WINDOW_RECORD, "record_no": record_no, "completed_at": just_completed(), **change}
    return await api.post("/api/v1/service-records", json=body, headers={"X-API-Key": demo.api_key})


async def visit(api: httpx.AsyncClient, demo: DemoCredentials, bundle_no: str, count: int = 3) -> list[str]:
    """`count` window transactions of one applicant at 市场监管局, one visit (一次办多件)."""
    numbers = [f"{bundle_no}-{n}" for n in range(1, count + 1)]
    for number in numbers:
        made = await register(api, demo, number, bundle_no=bundle_no, bundle_kind="visit")
        assert made.status_code == 201, made.text
    return numbers


async def theme(api: httpx.AsyncClient, demo: DemoCredentials, bundle_no: str, name: str) -> list[str]:
    """A 一件事 of three items across two units: 市场监管局 (window), 人社局 (window), 市场监管局 (online)."""
    parts: list[dict[str, Any]] = [
        {"unit_code": "YT-SCJ"},
        {"unit_code": "YT-RSJ", "staff_no": "RSJ-001", "item_code": "370600-GG-0002"},
        {"unit_code": "YT-SCJ", "staff_no": None, "service_channel": "online", "item_code": "370600-XK-0003"},
    ]
    numbers = [f"{bundle_no}-{n}" for n in range(1, len(parts) + 1)]
    for number, part in zip(numbers, parts, strict=True):
        made = await register(api, demo, number, bundle_no=bundle_no, bundle_kind="theme", theme_name=name, **part)
        assert made.status_code == 201, made.text
    return numbers


async def ratings(db: Database) -> list[Rating]:
    async with db.session() as session:
        return list((await session.exec(select(Rating).order_by(col(Rating.id)))).all())


async def record_nos_of(db: Database, rows: list[Rating]) -> list[str]:
    """The record number of each rating, in order."""
    async with db.session() as session:
        numbers = dict((await session.exec(select(ServiceRecord.id, ServiceRecord.record_no))).all())
    return [numbers[r.record_id] for r in rows]
