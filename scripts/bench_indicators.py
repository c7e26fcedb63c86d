"""Benchmark: an indicators report over the raw tables, at a given number of ratings.

    .venv/bin/python scripts/bench_indicators.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB \
        [--ratings 1000000]

EMPTIES the database it is given (drops its public schema), migrates it, loads the demo data, then
writes, server-side: one service record per rating over January–March 2025 (units 2 and 3, three
items, a staff member on half), one rating each (1 % bad, 2 % default ratings, 0.5 % not adopted),
and for every bad rating a case with callback / verified / rectified events. Then times the report
of February (a third of the rows) as the API computes it (models/indicators/report.py): no
grouping, by unit, by day; the best of three runs each, with the database warm.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text

from config import Settings
from migrations import upgrade
from models.db import Database
from models.indicators.definitions import Dimension
from models.indicators.filters import IndicatorFilter
from models.indicators.periods import Period
from models.indicators.report import build_report
from models.pii import configure_pii_keys, new_pii_key
from runtime.seed import seed_demo

LOAD = """
INSERT INTO servicerecord (record_no, item_id, unit_id, staff_id, applicant_type, service_channel, source_system,
                           completed_at, created_at)
SELECT 'B-' || n, 1 + n % 3, 2 + n % 2, CASE WHEN n % 2 = 0 THEN 1 + n % 2 END, 'individual',
       CASE WHEN n % 2 = 0 THEN 'window' ELSE 'online' END, 'bench',
       timestamptz '2025-01-01 00:00+08' + (n::float / :n) * interval '90 days', now()
FROM generate_series(1, :n) AS n;

INSERT INTO rating (record_id, level, channel, target, stage, follow_up, answers, comment, real_name, is_bad,
                    adopted, source_system, submitted_at)
SELECT id,
       CASE WHEN id % 100 = 0 THEN 'very_dissatisfied' WHEN id % 3 = 0 THEN 'satisfied' ELSE 'very_satisfied' END,
       CASE WHEN id % 50 = 1 THEN 'system_default' ELSE 'pc' END, 'item', 'whole', 0, '{}', '', id % 200 = 0,
       id % 100 = 0, id % 200 <> 100, 'bench', completed_at + interval '2 hours'
FROM servicerecord WHERE source_system = 'bench';

INSERT INTO "case" (rating_id, unit_id, workflow_id, stage, round, overdue, escalation_rung, policy_code,
                    policy_version, deadlines, has_provisional_deadline, opened_at, updated_at)
SELECT r.id, s.unit_id, 'bench-' || r.id, 'closed', 1, false, 0, 'yantai', 1, '[]', false, r.submitted_at, now()
FROM rating r JOIN servicerecord s ON s.id = r.record_id WHERE r.is_bad;

INSERT INTO caseevent (case_id, event_key, stage, round, action, actor, at, data, recorded_at)
SELECT c.id, e.key, e.stage, 1, e.action, 'system', c.opened_at + e.after, '{}', now()
FROM "case" c CROSS JOIN (VALUES ('0001-callback', 'verification', 'callback', interval '1 hour'),
                                 ('0002-verified', 'rectification', 'verified', interval '1 day'),
                                 ('0003-rectified', 'feedback', 'rectified', interval '2 days')) AS e(key, stage, action, after);
ANALYZE;
"""


def _settings(url: str, data_dir: str) -> Settings:
    key = new_pii_key()  # the benchmark writes no rater contact; the seed needs a key all the same
    configure_pii_keys([key])
    return Settings(database_url=url, data_dir=Path(data_dir), pii_keys=key, secret_key="bench-" + "x" * 32)


def load(url: str, ratings: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(url)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = _settings(url, data_dir)
        asyncio.run(seed_demo(Database(settings.async_sqlalchemy_url), settings))
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in LOAD.split(";\n"):
            if statement.strip():
                conn.execute(text(statement), {"n": ratings})
    print(f"loaded {ratings:,} records and ratings in {time.perf_counter() - started:.1f} s")
    engine.dispose()


async def measure(url: str) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        db = Database(_settings(url, data_dir).async_sqlalchemy_url)
    flt = IndicatorFilter(period=Period(date(2025, 2, 1), date(2025, 2, 28)))
    for dimension in (Dimension.NONE, Dimension.UNIT, Dimension.DAY):
        times = []
        for _ in range(3):
            async with db.session() as session:
                started = time.perf_counter()
                built = await build_report(session, flt, dimension, [1])
                times.append(time.perf_counter() - started)
        ratings = built.total.counts["ratings"].value
        print(
            f"group_by={dimension.value:5} {len(built.groups):3} groups, {ratings:,} ratings: best {min(times):.2f} s"
        )
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database to EMPTY and use")
    parser.add_argument("--ratings", type=int, default=1_000_000)
    args = parser.parse_args()
    load(args.database_url, args.ratings)
    asyncio.run(measure(args.database_url))


if __name__ == "__main__":
    main()
