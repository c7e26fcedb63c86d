"""The rollup of counts holds exactly what the raw tables count, once refreshed, whoever wrote and whatever changed.

Every count of every grouping the rollup serves, under filters made of its keys, is read from both
and held equal (tests/support/indicator_rollup.py): on the hand-counted datasets, on a random
dataset before and after random changes, and after each real writer (intake, a case's steps, an
upheld appeal, a default rating, a COPY import). Refreshes are idempotent, one at a time, and never
double count; a report says where its counts came from and as of when, and a rollup too old or
built by other conditions is not served. PostgreSQL: SQLite keeps no rollup and reads the raw tables.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from config import Settings
from models.case.step_inputs import AppealDecisionInput, AppealInput
from models.case.vocabulary import Outcome, Stage, Verdict
from models.db import Database, utcnow
from models.deadlines import CHINA_TZ
from models.indicators.periods import Period
from models.indicators.rollup_refresh import DEFINITION, LOCK_KEY, RollupUnavailable, refresh, rollup_status
from models.indicators.source import fresh_rollup_as_of
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget
from runtime.import_ratings import import_file
from runtime.refresh_indicators import RollupRefresher, refresh_once, runs_here
from runtime.seed import DemoCredentials
from tests.support.case_driver import REVIEWER, SCJ_STAFF, through_verification
from tests.support.db import case_row
from tests.support.http import login
from tests.support.indicator_data import by_key, counts, report, rows
from tests.support.indicator_datasets import cases, february, scoped
from tests.support.indicator_rollup import RandomData, assert_rollup_is_raw, rollup_rows
from tests.support.intake import add_records
from tests.support.waiting import eventually
from tests.support.world import World
from workflows.case import CaseWorkflow

FEB = {"from": "2025-02-01", "to": "2025-02-28"}
PERIODS = [Period(date(2025, 2, 1), date(2025, 2, 28)), Period(date(2025, 1, 15), date(2025, 3, 31))]
ON_POSTGRES = pytest.mark.parametrize("backend", ["postgresql"])


async def _hand_counted(db: Database) -> None:
    async with rows(db) as r:
        await february(r)
        await cases(r)
        await scoped(r)


async def _age_rollup(db: Database, by: str = "1 hour") -> None:
    """As if the refresher had stopped that long ago."""
    async with db.engine.begin() as conn:
        await conn.execute(text(f"UPDATE rollupstate SET refreshed_at = refreshed_at - interval '{by}'"))


@ON_POSTGRES
async def test_the_rollup_counts_what_the_raw_tables_count_on_the_hand_counted_datasets(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await _hand_counted(db)
    built = await refresh_once(db)
    assert built.full and built.slices > 0  # the first refresh builds it
    assert await assert_rollup_is_raw(db, PERIODS) > 1000

    # Through the API: the same answer from the rollup as from the raw tables, groups, indicators and links.
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    for group_by in ("none", "unit", "subunit", "day", "channel", "region", "month"):
        rolled = await report(offline_api, supervisor, **FEB, group_by=group_by)
        assert rolled["source"] == "rollup" and datetime.fromisoformat(rolled["as_of"]) == built.as_of
        await _age_rollup(db)
        raw = await report(offline_api, supervisor, **FEB, group_by=group_by)
        assert raw["source"] == "raw"
        assert (rolled["total"], rolled["groups"]) == (raw["total"], raw["groups"]), group_by
        built = await refresh_once(db)
    # The hand counts themselves (tests/test_indicator_cases.py): unit 2's February cases, and by unit.
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    mine = await report(offline_api, staff, **FEB)
    assert mine["source"] == "rollup" and counts(mine["total"])["cases"] == 8
    assert counts(mine["total"])["cannot_rectify_pending_cases"] == 1
    units = by_key(await report(offline_api, supervisor, **FEB, group_by="unit"))
    assert {key: counts(group)["cases"] for key, group in units.items()} == {"1": 0, "2": 8, "3": 1, "4": 0}
    # An item or a staff member is not among the rollup's keys: those reports read the raw tables.
    for params in ({"group_by": "staff"}, {"group_by": "item"}, {"staff_id": 1}, {"item_id": 2}):
        assert (await report(offline_api, supervisor, **FEB, **params))["source"] == "raw", params


@ON_POSTGRES
async def test_a_random_dataset_and_random_changes_once_refreshed(demo: DemoCredentials, db: Database) -> None:
    seed = int(os.environ.get("HCP_RANDOM_SEED", 20261203 if os.environ.get("CI") else random.randrange(10**6)))
    rng = random.Random(seed)
    async with rows(db) as r:
        data = RandomData(r, rng, date(2025, 1, 28), 35)
        await data.units_and_regions()
        for _ in range(220):
            await data.transaction()
        for _ in range(40):
            await data.follow_up()
    assert (await refresh_once(db)).full
    assert await assert_rollup_is_raw(db, PERIODS, light=True) > 1000, f"seed {seed}"

    async with rows(db) as r:
        data.r = r
        await data.change(80)
    refreshed = await refresh_once(db)
    assert not refreshed.full and refreshed.slices > 0
    assert await assert_rollup_is_raw(db, PERIODS) > 1000, f"seed {seed}"
    # The slices refreshed one by one hold row for row what a build from nothing holds.
    incremental = await rollup_rows(db)
    assert (await refresh_once(db, full=True)).full
    assert await rollup_rows(db) == incremental, f"seed {seed}"


@ON_POSTGRES
async def test_refreshes_are_idempotent_one_at_a_time_and_never_double_count(
    demo: DemoCredentials, db: Database
) -> None:
    await _hand_counted(db)
    await refresh_once(db)
    before = await rollup_rows(db)
    assert sum(len(table) for table in before.values()) > 20
    nothing = await refresh_once(db)
    assert (nothing.full, nothing.slices) == (False, 0) and await rollup_rows(db) == before

    # Every slice queued twice over: recomputed once each, to the same rows.
    async with db.engine.begin() as conn:
        for _ in range(2):
            await conn.execute(text("INSERT INTO rollupdirty (day, unit_id) SELECT day, unit_id FROM ratingrollup"))
        queued = await conn.scalar(text("SELECT count(DISTINCT (day, unit_id)) FROM ratingrollup"))
    again = await refresh_once(db)
    assert again.slices == queued and await rollup_rows(db) == before

    # Two refreshes at once after a new rating: the second waits for the first and finds nothing left.
    await _rate(db, "DEMO-0005", datetime(2025, 2, 20, 9, tzinfo=CHINA_TZ))
    first, second = await asyncio.gather(refresh_once(db), refresh_once(db))
    assert sorted([first.slices, second.slices]) == [0, 2]  # the rating's day and its record's, at unit 2
    assert await assert_rollup_is_raw(db, PERIODS[:1], light=True) > 100
    after = await rollup_rows(db)
    assert sum(r[4] for r in after["ratingrollup"]) == sum(r[4] for r in before["ratingrollup"]) + 1  # `ratings`

    # While one holds the lock, a worker's turn (wait=False) is skipped; the command's (wait=True) waits its turn.
    async with db.engine.begin() as holder:
        await holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        skipped = await refresh_once(db, wait=False)
        assert skipped.skipped and skipped.as_of is None
        waiting = asyncio.create_task(refresh_once(db))

        async def blocked() -> bool:
            async with db.engine.connect() as conn:
                found = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                return await conn.scalar(text(found)) == 1

        await eventually(blocked)
        assert not waiting.done()
    assert not (await waiting).skipped


async def _rate(db: Database, record_no: str, at: datetime, channel: RatingChannel = RatingChannel.PC) -> int:
    """A good rating of a demo record written as intake stages it (the trigger does not care who writes)."""
    async with db.session() as session:
        record_id = (
            await session.execute(text("SELECT id FROM servicerecord WHERE record_no = :no"), {"no": record_no})
        ).scalar_one()
        rating = Rating(
            record_id=record_id,
            level=RatingLevel.SATISFIED,
            channel=channel,
            target=RatingTarget.ITEM,
            is_bad=False,
            source_system="system-default" if channel == RatingChannel.SYSTEM_DEFAULT else "demo-hall",
            submitted_at=at,
        )
        session.add(rating)
        await session.commit()
        assert rating.id is not None
        return rating.id


@ON_POSTGRES
async def test_a_report_says_as_of_when_and_a_stale_rollup_is_not_served(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await _hand_counted(db)
    built = await refresh_once(db)
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    first = await report(offline_api, supervisor, **FEB)
    assert first["source"] == "rollup" and datetime.fromisoformat(first["as_of"]) == built.as_of

    await _rate(db, "DEMO-0005", datetime(2025, 2, 20, 9, tzinfo=CHINA_TZ))
    written = utcnow()
    stale = await report(offline_api, supervisor, **FEB)
    # Not refreshed yet: the figures are as of the last refresh, before the rating, and say so.
    assert stale["source"] == "rollup" and datetime.fromisoformat(stale["as_of"]) < written
    assert counts(stale["total"])["ratings"] == counts(first["total"])["ratings"]
    async with db.engine.connect() as conn:
        status = await rollup_status(conn)
    # One statement, two slices of unit 2: the rating's day, and the day its record was completed (today).
    assert status is not None and status.current and status.queued == 2

    # A refresher stopped for longer than HCP_INDICATOR_ROLLUP_MAX_AGE_SECONDS: the raw tables answer, as of now.
    await _age_rollup(db, "121 seconds")
    raw = await report(offline_api, supervisor, **FEB)
    assert raw["source"] == "raw" and datetime.fromisoformat(raw["as_of"]) >= written
    assert counts(raw["total"])["ratings"] == (counts(first["total"])["ratings"] or 0) + 1
    refreshed = await refresh_once(db)
    assert not refreshed.full and refreshed.slices == 2  # the rating's day, and its record's completion day
    fresh = await report(offline_api, supervisor, **FEB)
    assert fresh["source"] == "rollup" and fresh["total"] == raw["total"]

    # A rollup built by other conditions (an older counting.py) is not served, and the next refresh rebuilds it.
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE rollupstate SET definition = 'an older definition'"))
    assert (await report(offline_api, supervisor, **FEB))["source"] == "raw"
    assert (await refresh_once(db)).full
    assert (await report(offline_api, supervisor, **FEB))["source"] == "rollup"


def test_the_definition_digest_is_the_same_in_every_process() -> None:
    """A rollup built by one process is read by others: the digest must not vary with string hashing."""
    digest = "from models.indicators.rollup_refresh import DEFINITION; print(DEFINITION)"
    seen = {
        subprocess.run(
            [sys.executable, "-c", digest],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
        ).stdout.strip()
        for seed in range(6)
    }
    assert seen == {DEFINITION}


@ON_POSTGRES
async def test_the_rollup_is_refused_without_its_triggers(demo: DemoCredentials, db: Database) -> None:
    async with db.engine.connect() as conn:
        transaction = await conn.begin()
        await conn.execute(text("DROP TRIGGER rollup_dirty_caseevent_insert ON caseevent"))
        with pytest.raises(RollupUnavailable, match="11 of the rollup's 12 triggers"):
            await refresh(conn)
        await transaction.rollback()
    assert (await refresh_once(db)).full


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_keeps_no_rollup_and_reads_the_raw_tables(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, settings: Settings
) -> None:
    await _hand_counted(db)
    with pytest.raises(RollupUnavailable, match="PostgreSQL only"):
        await refresh_once(db)
    assert not runs_here(settings)  # the worker does not try
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    body = await report(offline_api, staff, **FEB)
    assert body["source"] == "raw" and counts(body["total"])["cases"] == 8


@ON_POSTGRES
async def test_the_command_and_the_workers_refresher(demo: DemoCredentials, db: Database, settings: Settings) -> None:
    await _hand_counted(db)
    env = {**os.environ, "HCP_DATABASE_URL": settings.database_url, "HCP_DATA_DIR": str(settings.data_dir)}

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runtime.refresh_indicators", *args], env=env, capture_output=True, text=True
        )

    assert "not built" in command("--status").stdout
    built = command("--full")
    assert built.returncode == 0 and "indicator rollup built:" in built.stdout, built.stderr
    assert "0 slice marks waiting" in command("--status").stdout
    async with db.session() as session:  # built by another process, read by this one
        assert await fresh_rollup_as_of(session, timedelta(minutes=5)) is not None
    assert await assert_rollup_is_raw(db, PERIODS[:1], light=True) > 100

    # The worker's loop refreshes on its own; a rating written meanwhile is counted by the next turn.
    quick = settings.model_copy(update={"indicator_rollup_refresh_seconds": 0.2})
    assert runs_here(quick)
    stop = asyncio.Event()
    loop = asyncio.create_task(RollupRefresher(db, quick).run(stop))
    try:
        await _rate(db, "DEMO-0005", datetime(2025, 2, 20, 9, tzinfo=CHINA_TZ))

        async def counted() -> bool:
            async with db.engine.connect() as conn:
                return (
                    await conn.scalar(text("SELECT count(*) FROM rollupdirty")) == 0
                    and (await conn.scalar(text("SELECT sum(ratings) FROM ratingrollup WHERE day = '2025-02-20'"))) == 1
                )

        await eventually(counted)
    finally:
        stop.set()
        await loop
    assert await assert_rollup_is_raw(db, PERIODS[:1], light=True) > 100


@ON_POSTGRES
async def test_each_writer_reaches_the_rollup_once_refreshed(world: World, tmp_path: Path) -> None:
    """Intake, a case's steps, an upheld appeal, a default rating and a COPY import, each through its real path."""
    today = datetime.now(CHINA_TZ).date()
    period = Period(today - timedelta(days=3), today + timedelta(days=1))
    params = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    staff = await login(world.api, "scj_staff", world.demo.passwords["scj_staff"])
    assert (await refresh_once(world.db)).full

    async def refreshed_report() -> dict[str, int | None]:
        done = await refresh_once(world.db)
        assert not done.full and done.slices > 0  # the writer queued its slices
        assert await assert_rollup_is_raw(world.db, [period], light=True) > 20
        body = await report(world.api, staff, **params)
        assert body["source"] == "rollup"
        return counts(body["total"])

    # Intake: a bad rating, its case opened by the outbox relay.
    opened = await world.open(record_no="DEMO-0001")
    got = await refreshed_report()
    assert (got["ratings"], got["bad_ratings"], got["cases"]) == (1, 1, 1)
    # The case moves on: accepted, called back, verified (属实): it is to be rectified now.
    await through_verification(opened)
    assert (await refreshed_report())["rectification_cases"] == 1
    # An appeal upheld: the rating leaves the figures (不予采纳), the appeal figures count it.
    appealed = await world.open(record_no="DEMO-0004")
    await through_verification(appealed, Verdict.DISPUTED)
    await appealed.do(CaseWorkflow.file_appeal, AppealInput(actor=SCJ_STAFF, reason="误评", evidence=["监控录像"]))
    await appealed.do(CaseWorkflow.decide_appeal, AppealDecisionInput(actor=REVIEWER, upheld=True, reason="属误评"))

    async def not_adopted() -> bool:
        return (await case_row(world.db, appealed.case_id)).outcome == Outcome.NOT_ADOPTED

    await eventually(not_adopted)
    got = await refreshed_report()
    assert (got["ratings"], got["not_adopted_ratings"], got["appeal_upheld_cases"], got["cases"]) == (1, 1, 1, 1)
    # A default rating (系统默认评价), as the rating sweep writes it.
    await _rate(world.db, "DEMO-0007", utcnow(), RatingChannel.SYSTEM_DEFAULT)
    got = await refreshed_report()
    assert (got["ratings"], got["default_ratings"], got["active_ratings"]) == (2, 1, 1)
    # A 表9 file imported by COPY: three good ratings of new records of 市场监管局.
    await add_records(world.db, 3)
    when = (datetime.now(CHINA_TZ) - timedelta(hours=1)).strftime("%Y%m%dT%H%M%S")
    lines = ["办件编号,评价渠道,评价人,评价时间,评价次数,满意度,满意度代码,文字评价,行政区划"]
    lines += [f"IMP-000{n},PC端,,{when},1,,1,,370600" for n in (1, 2, 3)]
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tally = await import_file(world.settings, path, "national-platform", "csv", progress_out=io.StringIO())
    assert tally.written == 3
    got = await refreshed_report()
    assert (got["ratings"], got["completed_records"], got["rated_records"]) == (5, 6 + 3, 5)
    assert (await case_row(world.db, opened.case_id)).stage == Stage.RECTIFICATION
