"""Default ratings (默认评价) under the Guangdong trial: 基本满意 for an unrated transaction after 7 days, once, never a case."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError
from sqlmodel import func, select

from activities.rating_sweep import RatingSweepActivities
from config import Settings
from models.case.records import Case
from models.db import Database, utcnow
from models.default_ratings import ACTIVE, DEFAULT_SOURCE_SYSTEM
from models.outbox import OutboxEntry
from models.policy import PolicyProfile
from models.policy_store import add_policy_version, load_profile_files
from models.rating_sweep_io import SweepActivity
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ServiceRecord
from models.suspicion.records import RatingFingerprint
from models.upstream import UpstreamPush
from runtime.seed import DemoCredentials
from tests.support.case_driver import use_policy
from tests.support.intake import count
from tests.support.unrated import add_unrated, sweep

GUANGDONG = load_profile_files()["guangdong"]


def test_the_guangdong_profile_defaults_to_basically_satisfied_after_7_days() -> None:
    rating = GUANGDONG.rating
    assert (str(rating.default_after), rating.default_level, str(rating.supplementary)) == (
        "7d",
        "basically_satisfied",
        "7d",
    )
    assert "广东试行" in rating.source and GUANGDONG.level("basically_satisfied").label == "基本满意"
    assert load_profile_files()["national"].rating.default_after is None
    body = GUANGDONG.model_dump(mode="json")
    body["rating"]["default_level"] = "dissatisfied"  # a default may never be a bad review
    with pytest.raises(ValidationError, match="bad review level"):
        PolicyProfile.model_validate(body)
    body["rating"]["default_level"] = None  # and it comes with its delay, or not at all
    with pytest.raises(ValidationError, match="go together"):
        PolicyProfile.model_validate(body)


async def defaults(db: Database) -> list[Rating]:
    async with db.session() as session:
        rows = await session.exec(select(Rating).where(Rating.channel == RatingChannel.SYSTEM_DEFAULT))
        return list(rows.all())


async def test_an_unrated_transaction_is_rated_once_by_default_and_never_opens_a_case(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient
) -> None:
    await use_policy(db, "guangdong")
    now = utcnow()
    due = await add_unrated(db, [f"DEF-{n:02d}" for n in range(9)], now - timedelta(days=8))
    await add_unrated(db, ["DEF-WEEK"], now - timedelta(days=6, hours=23))  # the 7 days are not over
    await add_unrated(db, ["DEF-LATE"], now - timedelta(days=8), created_at=now - timedelta(hours=2))  # backfilled
    await add_unrated(db, ["DEF-OLD"], now - timedelta(days=60))  # due long before the lookback
    await add_unrated(db, ["DEF-RATED"], now - timedelta(days=3))
    rated = await offline_api.post(
        "/api/v1/ratings",
        json={"record_no": "DEF-RATED", "level": "very_satisfied", "channel": "mobile"},
        headers={"X-API-Key": demo.api_key},
    )
    assert rated.status_code == 201
    async with db.session() as session:
        rating = (await session.exec(select(Rating))).one()
    pushes_before = await count(db, UpstreamPush)

    activities = RatingSweepActivities(db, settings, asyncio.Event())
    batches = await sweep(activities, SweepActivity.DEFAULT, now, batch_size=4)
    assert sum(b.written for b in batches) == 9
    written = await defaults(db)
    assert sorted(r.record_id for r in written) == sorted(due)
    for row in written:
        assert (row.level, row.target, row.follow_up, row.is_bad, row.adopted) == (
            RatingLevel.BASICALLY_SATISFIED, RatingTarget.ITEM, 0, False, True,
        )  # fmt: skip
        assert row.source_system == DEFAULT_SOURCE_SYSTEM and row.rater_phone is None and not row.real_name
        assert row.submitted_at == now - timedelta(days=8) + timedelta(days=7)  # when it fell due
    assert await count(db, Case) == 0 and await count(db, OutboxEntry) == 0
    assert await count(db, UpstreamPush) == pushes_before + 9  # the platform hears of them (系统默认评价)
    assert await count(db, RatingFingerprint) == 1  # the system is not a rater to watch: only the rater's

    # Again, and twice at once: nothing more.
    again = await asyncio.gather(
        sweep(activities, SweepActivity.DEFAULT, utcnow(), batch_size=4),
        sweep(RatingSweepActivities(db, settings, asyncio.Event()), SweepActivity.DEFAULT, utcnow(), batch_size=3),
    )
    assert sum(b.written for run in again for b in run) == 0
    assert len(await defaults(db)) == 9

    # Every "active rating" figure leaves the defaults out.
    async with db.session() as session:
        active = (await session.exec(select(func.count()).select_from(Rating).where(ACTIVE))).one()
        every = (await session.exec(select(func.count()).select_from(Rating))).one()
    assert (active, every) == (1, 10) and rating.channel == RatingChannel.MOBILE

    # The rater's window closed before the default was written: a late rating is refused, not a second rating.
    late = await offline_api.post(
        "/api/v1/ratings",
        json={"record_no": "DEF-00", "level": "very_dissatisfied", "channel": "mobile"},
        headers={"X-API-Key": demo.api_key},
    )
    assert late.status_code == 409 and late.json()["detail"]["code"] == "rating_window_closed"
    assert "7 天" in late.json()["detail"]["message"]


async def test_a_default_waits_for_the_raters_window_when_it_is_longer(
    settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    """Yantai's 5 working days can outlast 7 natural days (a holiday week): the default waits for both clocks."""
    body = GUANGDONG.model_dump(mode="json")
    body["rating"]["supplementary"] = "10wd"  # two working weeks, longer than 7 days in any calendar
    async with db.session() as session:
        await add_policy_version(session, PolicyProfile.model_validate(body), None, "a longer window")
        await session.commit()
    await use_policy(db, "guangdong")
    now = utcnow()
    waiting = await add_unrated(db, ["DEF-W1"], now - timedelta(days=8))
    activities = RatingSweepActivities(db, settings, asyncio.Event())
    assert sum(b.written for b in await sweep(activities, SweepActivity.DEFAULT, now, batch_size=10)) == 0
    later = now + timedelta(days=20)  # both clocks have run out, for the demo's nine records too
    assert sum(b.written for b in await sweep(activities, SweepActivity.DEFAULT, later, batch_size=4)) == 1 + 9
    [row] = [r for r in await defaults(db) if r.record_id == waiting[0]]
    async with db.session() as session:
        record = await session.get(ServiceRecord, waiting[0])
        assert record is not None
    assert row.submitted_at > record.completed_at + timedelta(days=7)  # the 10 working days, not the 7 days
    assert await count(db, Rating) == 10 and await count(db, Case) == 0
