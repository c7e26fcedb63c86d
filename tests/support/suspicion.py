"""Making suspicious patterns through the real intake, and reading the flags they leave."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update
from sqlmodel import col, func, select

from models.audit import AuditEvent
from models.db import Database, utcnow
from models.ratings import Rating
from models.suspicion.records import Detector, RatingFingerprint, SuspicionFlag, SuspicionFlagRating
from runtime.seed import DemoCredentials
from tests.support.http import login

_numbers = itertools.count(1)


async def register(
    api: httpx.AsyncClient, demo: DemoCredentials, *, online: bool = False, staff: bool = True,
    unit: str = "YT-SCJ", completed_at: datetime | None = None,
) -> str:  # fmt: skip
    """A new transaction of the demo hall system; its record number."""
    record_no = f"SUS-{next(_numbers):05d}"
    window = not online
    body: dict[str, Any] = {
        "record_no": record_no,
        "item_code": "370600-XK-0001",
        "unit_code": unit,
        "applicant_type": "individual",
        "service_channel": "window" if window else "online",
        "completed_at": (completed_at or utcnow() - timedelta(hours=1)).isoformat(),
    }
    if window and staff:
        body["staff_no"] = "SCJ-001" if unit == "YT-SCJ" else "RSJ-001"
    response = await api.post("/api/v1/service-records", json=body, headers={"X-API-Key": demo.api_key})
    assert response.status_code == 201, response.text
    return record_no


async def rate(api: httpx.AsyncClient, demo: DemoCredentials, record_no: str, **fields: Any) -> int:
    """A rating through POST /api/v1/ratings (good and anonymous unless told otherwise); its id."""
    body: dict[str, Any] = {"record_no": record_no, "level": "satisfied", "channel": "hall_tablet", **fields}
    response = await api.post("/api/v1/ratings", json=body, headers={"X-API-Key": demo.api_key})
    assert response.status_code == 201, response.text
    return int(response.json()["rating_id"])


def rater(phone: str) -> dict[str, Any]:
    return {"real_name": True, "rater": {"name": "王测试", "phone": phone}}


async def flags(db: Database, detector: Detector | None = None) -> list[SuspicionFlag]:
    async with db.session() as session:
        query = select(SuspicionFlag).order_by(col(SuspicionFlag.id))
        if detector is not None:
            query = query.where(SuspicionFlag.detector == detector)
        return list((await session.exec(query)).all())


async def ratings_of(db: Database, flag: SuspicionFlag) -> set[int]:
    """The ratings behind a flag."""
    async with db.session() as session:
        found = await session.exec(select(SuspicionFlagRating.rating_id).where(SuspicionFlagRating.flag_id == flag.id))
        return set(found.all())


async def all_ratings(db: Database) -> dict[int, dict[str, Any]]:
    """Every rating as stored (contact decrypted): a flag or decision must leave each one exactly as it was."""
    async with db.session() as session:
        return {r.id: r.model_dump() for r in (await session.exec(select(Rating))).all() if r.id is not None}


async def backdate(db: Database, rating_ids: list[int], at: datetime) -> None:
    """Move ratings (and their fingerprints) to another time, as if they had come in then."""
    async with db.session() as session:
        for model in (Rating, RatingFingerprint):
            key = col(Rating.id) if model is Rating else col(RatingFingerprint.rating_id)
            await session.exec(update(model).where(key.in_(rating_ids)).values(submitted_at=at))
        await session.commit()


async def audit_count(db: Database, action: str) -> int:
    async with db.session() as session:
        return (
            await session.exec(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))
        ).one()


async def set_thresholds(api: httpx.AsyncClient, demo: DemoCredentials, code: str, **sections: dict[str, Any]) -> None:
    """Edit a profile's suspicion numbers through the admin API (a new version, as an administrator would).

    Patterns across units follow `national`; those inside a unit follow its region's (`yantai` for the demo).
    """
    admin = await login(api, "admin", demo.passwords["admin"])
    profile = (await api.get(f"/api/v1/policies/{code}", headers=admin)).json()["profile"]
    for name, numbers in sections.items():
        profile["suspicion"][name].update(numbers)
    response = await api.put(f"/api/v1/policies/{code}", json={"profile": profile, "note": "测试阈值"}, headers=admin)
    assert response.status_code == 201, response.text


async def plant_flag(db: Database, rating_id: int = 1, unit_id: int = 2) -> int:
    """An open flag on one rating, for the authorization matrices (the detectors are tested on their own)."""
    async with db.session() as session:
        at = utcnow()
        flag = SuspicionFlag(
            detector=Detector.CHANNEL_MISMATCH, subject=f"matrix/{rating_id}", open_key=f"matrix:{rating_id}",
            unit_id=unit_id, reason="矩阵测试", rating_count=1, first_at=at, last_at=at,
        )  # fmt: skip
        session.add(flag)
        await session.flush()
        assert flag.id is not None
        session.add(SuspicionFlagRating(flag_id=flag.id, rating_id=rating_id))
        await session.commit()
        return flag.id
