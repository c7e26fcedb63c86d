"""Benchmark: the rating sweep's batches (邀评 and 默认评价) on PostgreSQL, as its activities run them.

    .venv/bin/python scripts/bench_rating_sweep.py [--records 20000] [--batch 500]

Makes a scratch PostgreSQL database on 127.0.0.1:5432, migrates it and loads the demo data (Yantai),
then `records` unrated records with an applicant phone completed two days ago (each due one
invitation) and as many completed eight days ago in a region under the Guangdong profile (each due
one default rating). Times each kind of batch through the activity (one transaction a batch, keyset
pages), then a second run finding nothing, checks the counts and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activities.rating_sweep import RatingSweepActivities  # noqa: E402
from config import Settings  # noqa: E402
from migrations import upgrade  # noqa: E402
from models.db import Database, utcnow  # noqa: E402
from models.pii import EncryptedText, configure_pii_keys, new_pii_key  # noqa: E402
from models.rating_sweep_io import SweepActivity, SweepBatchInput  # noqa: E402
from runtime.seed import seed_demo  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def prepare(name: str, settings: Settings, records: int) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(settings.sqlalchemy_url)
    asyncio.run(_seed(settings))
    phone = EncryptedText().process_bind_param("13800001111", None)  # one applicant; encrypted as the column does
    with psycopg.connect(_url(name), autocommit=True) as conn:
        conn.execute("INSERT INTO region (code, name, policy_code) VALUES ('440000', '广东省', 'guangdong')")
        conn.execute(
            "INSERT INTO unit (code, name, region_id) SELECT 'GD-1', '广东某局', id FROM region WHERE code = '440000'"
        )
        insert = (
            "INSERT INTO servicerecord (record_no, item_id, unit_id, applicant_type, service_channel, source_system,"
            " completed_at, created_at, applicant_phone) SELECT %s || g, 1, {unit}, 'individual', 'online',"
            " 'demo-hall', now() - interval {age}, now() - interval {age}, %s FROM generate_series(1, %s) g"
        )
        conn.execute(insert.format(unit="2", age="'2 days'"), ("INV-", phone, records))
        unit = "(SELECT id FROM unit WHERE code = 'GD-1')"
        conn.execute(insert.format(unit=unit, age="'8 days'"), ("DEF-", None, records))
        conn.execute("VACUUM ANALYZE servicerecord")


async def _seed(settings: Settings) -> None:
    db = Database(settings.async_sqlalchemy_url)
    try:
        await seed_demo(db, settings)
    finally:
        await db.dispose()


async def run(settings: Settings, kind: SweepActivity, batch: int) -> tuple[float, int, int]:
    """(seconds, batches, written) of one sweep of one kind."""
    db = Database(settings.async_sqlalchemy_url)
    activities = RatingSweepActivities(db, settings, asyncio.Event())
    call = activities.invite if kind == SweepActivity.INVITE else activities.default
    now, after_id, batches, written = utcnow(), 0, 0, 0
    started = time.perf_counter()
    try:
        while True:
            result = await call(SweepBatchInput(now=now, after_id=after_id, limit=batch))
            batches, written = batches + 1, written + result.written
            if result.last_id is None or result.scanned < batch:
                return time.perf_counter() - started, batches, written
            after_id = result.last_id
    finally:
        await db.dispose()


def counts(name: str) -> dict[str, int]:
    with psycopg.connect(_url(name)) as conn:
        return {
            table: conn.execute(query).fetchone()[0]  # type: ignore[index]
            for table, query in {
                "invitations": "SELECT count(*) FROM ratinginvitation WHERE issued_by = 'sweep:invitation'",
                "notices": "SELECT count(*) FROM notification WHERE kind = 'rating_invitation'",
                "default ratings": "SELECT count(*) FROM rating WHERE channel = 'system_default'",
                "cases": 'SELECT count(*) FROM "case"',
            }.items()
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    name = f"hcp_bench_sweep_{uuid.uuid4().hex[:8]}"
    key = new_pii_key()
    configure_pii_keys([key])
    settings = Settings(
        database_url=_url(name).replace("postgresql://", "postgresql+psycopg://"),
        pii_keys=key,
        secret_key="bench-" + "x" * 40,
        data_dir=Path("/tmp") / name,
        rating_invitation_quiet_hours="",
        rating_sweep_batch_size=args.batch,
    )
    try:
        print(f"preparing {args.records:,} records due an invitation and {args.records:,} due a default in {name} …")
        prepare(name, settings, args.records)
        for kind in (SweepActivity.DEFAULT, SweepActivity.INVITE):
            seconds, batches, written = asyncio.run(run(settings, kind, args.batch))
            rate = written / seconds if seconds else 0
            print(f"{kind.value:22} {written:>8,} written in {batches:>4} batches, {seconds:6.2f} s ({rate:,.0f}/s)")
            seconds, batches, written = asyncio.run(run(settings, kind, args.batch))
            print(f"{kind.value + ' again':22} {written:>8,} written in {batches:>4} batches, {seconds:6.2f} s")
        found = counts(name)
        print(", ".join(f"{table} {value:,}" for table, value in found.items()))
        expected = {"invitations": args.records, "notices": args.records, "default ratings": args.records, "cases": 0}
        assert found == expected, found
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
