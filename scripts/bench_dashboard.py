"""Benchmark: the dashboard's reports from the rollup against the plain GROUP BY over the raw tables, same run.

    .venv/bin/python scripts/bench_dashboard.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB \
        [--ratings 10000000] [--days 365] [--rollup-runs 100] [--raw-runs 5] [--reuse]

EMPTIES the database it is given (drops its public schema), migrates it and loads the demo data, then
writes server-side (INSERT … SELECT over generate_series, a deterministic hash for every choice): a
province (16 cities, each a city office with 10 departments and 4 counties of 4 departments: 497
units in a tree, 400 items, 5 staff a unit), one service record per rating over the last `--days`
days (40 % at a window with a staff member), an item rating on 90 % of them and a staff rating on a
quarter of the window ones (~10 million ratings at the default), 10 % of them default ratings,
~1 % bad (5 % of those not adopted), 0.5 % followed up, and for each bad rating a case in a stage
of its own with its timeline (accepted, callback, verdict, overdue and escalated, rectified, 无法整改,
appeals). The bulk load runs with triggers and foreign-key checks off (session_replication_role),
as a historical load would; the full build afterwards counts everything. `--reuse` skips the load.

Then it times: the full build of the rollup; each typical dashboard report (models/indicators/report.py,
as the API builds it, without drill-down links) from the rollup and from the raw tables, interleaved,
p50 and p99 (with fewer than 100 runs the p99 is the slowest run); 10,000 new ratings of the last two
days (1 % bad with cases) written with the triggers on, and the incremental refresh after them;
what the triggers cost a single-row insert; and checks the rollup still equals the raw tables.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench_dashboard_data import LOAD, NEW_RATINGS, SESSION, province_rows
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from config import Settings
from migrations import upgrade
from models.db import Database
from models.indicators.definitions import Dimension
from models.indicators.filters import IndicatorFilter
from models.indicators.periods import Period, china_today
from models.indicators.report import IndicatorReport, build_report
from models.organisation import unit_subtree_ids
from models.pii import configure_pii_keys, new_pii_key
from runtime.refresh_indicators import refresh_once
from runtime.seed import seed_demo

FRESH = timedelta(days=1)  # the benchmark's rollup is "fresh" for its whole run: it measures reads, not age


def _settings(url: str, data_dir: str) -> Settings:
    key = new_pii_key()  # the benchmark writes no rater contact; the seed needs a key all the same
    configure_pii_keys([key])
    return Settings(database_url=url, data_dir=Path(data_dir), pii_keys=key, secret_key="bench-" + "x" * 32)


def _run(conn: Connection, script: str, params: dict[str, Any]) -> None:
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(text(statement), params)


def load(url: str, ratings: int, days: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(url)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = _settings(url, data_dir)
        asyncio.run(seed_demo(Database(settings.async_sqlalchemy_url), settings))
    started = time.perf_counter()
    end = china_today()
    params = {"n": ratings, "days": days, "start": f"{(end - timedelta(days=days - 1)).isoformat()} 00:00+08"}
    with engine.begin() as conn:
        _run(conn, SESSION, {})
        conn.execute(text("SET LOCAL session_replication_role = replica"))  # a historical load: no triggers
        province_rows(conn)
        for step in LOAD:
            began = time.perf_counter()
            _run(conn, step.sql, params)
            print(f"  {step.name}: {time.perf_counter() - began:.0f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        began = time.perf_counter()
        conn.execute(text('VACUUM (ANALYZE) servicerecord, rating, "case", caseevent'))
        print(f"  vacuum analyze: {time.perf_counter() - began:.0f} s", flush=True)
        counted = conn.execute(text('SELECT (SELECT count(*) FROM rating), (SELECT count(*) FROM "case")')).one()
    print(f"loaded {counted[0]:,} ratings and {counted[1]:,} cases in {time.perf_counter() - started:.0f} s")
    engine.dispose()


@dataclass(frozen=True)
class Query:
    name: str
    what: str
    flt: IndicatorFilter
    dimension: Dimension
    roots: list[int]


async def dashboard_queries(db: Database) -> list[Query]:
    """The typical dashboard reports, over the bench province (its units, regions and the last months)."""
    today = china_today()
    month = Period(today.replace(day=1), today)
    last_end = today.replace(day=1) - timedelta(days=1)
    last_month = Period(last_end.replace(day=1), last_end)
    async with db.engine.connect() as conn:
        found = (await conn.execute(text("SELECT id FROM unit WHERE code = 'BENCH-SHENG'"))).scalar_one()
        city = (await conn.execute(text("SELECT id, region_id FROM unit WHERE code = 'BENCH-C01'"))).one()
        county = (await conn.execute(text("SELECT id FROM unit WHERE code = 'BENCH-C01-X1'"))).scalar_one()
        staff = (await conn.execute(text("SELECT min(staff_id) FROM servicerecord WHERE staff_id > 2"))).scalar()
    async with db.session() as session:
        province = frozenset(await unit_subtree_ids(session, found))
        city_units = frozenset(await unit_subtree_ids(session, city.id))
        county_units = frozenset(await unit_subtree_ids(session, county))
    days90 = Period(today - timedelta(days=89), today)
    return [
        Query(
            "region_month",
            "this month, one city's region",
            IndicatorFilter(month, province, region_id=city.region_id),
            Dimension.NONE,
            [found],
        ),
        Query(
            "by_unit",
            "this month, a city's units (subunit)",
            IndicatorFilter(month, city_units, city.id),
            Dimension.SUBUNIT,
            [city.id],
        ),
        Query(
            "by_day_90",
            "90 days by day, the province",
            IndicatorFilter(days90, province, found),
            Dimension.DAY,
            [found],
        ),
        Query(
            "by_channel",
            "this month by channel, the province",
            IndicatorFilter(month, province, found),
            Dimension.CHANNEL,
            [found],
        ),
        Query(
            "subtree",
            "last month, one county's subtree",
            IndicatorFilter(last_month, county_units, county),
            Dimension.NONE,
            [county],
        ),
        Query(
            "ranking",
            "last month, every unit ranked",
            IndicatorFilter(last_month, province, found),
            Dimension.UNIT,
            [found],
        ),
        Query(
            "staff",
            "last month, one staff member (raw both ways)",
            IndicatorFilter(last_month, province, staff_id=staff),
            Dimension.NONE,
            [found],
        ),
    ]


async def _timed(build: Callable[[], Awaitable[IndicatorReport]]) -> tuple[float, IndicatorReport]:
    started = time.perf_counter()
    built = await build()
    return time.perf_counter() - started, built


def _counts(report: IndicatorReport) -> list[tuple[str | None, dict[str, int | None]]]:
    return [(g.key, {n: c.value for n, c in g.counts.items()}) for g in [report.total, *report.groups]]


@dataclass(frozen=True)
class Result:
    query: Query
    source: str
    groups: int
    rollup: tuple[float, float, int]  # p50, p99, runs
    raw: tuple[float, float, int]


async def measure(db: Database, queries: list[Query], rollup_runs: int, raw_runs: int) -> list[Result]:
    """Each query from the rollup and from the raw tables, interleaved so both meet the same background load."""
    results = []
    for query in queries:

        def report(max_age: timedelta | None, q: Query = query) -> Callable[[], Awaitable[IndicatorReport]]:
            async def build() -> IndicatorReport:
                async with db.session() as session:
                    return await build_report(session, q.flt, q.dimension, q.roots, False, max_age)

            return build

        rolled, raw = [], []
        _, first = await _timed(report(FRESH))  # warm both once
        _, baseline = await _timed(report(None))
        assert _counts(first) == _counts(baseline), f"{query.name}: the rollup's counts differ from the raw tables'"
        for run in range(max(rollup_runs, raw_runs)):
            if run < rollup_runs:
                seconds, _ = await _timed(report(FRESH))
                rolled.append(seconds)
            if run < raw_runs:
                seconds, _ = await _timed(report(None))
                raw.append(seconds)
        result = Result(query, first.source.value, len(first.groups), _percentiles(rolled), _percentiles(raw))
        results.append(result)
        print(f"  {query.name}: {result.source} {result.rollup[0] * 1000:.0f} ms, raw {result.raw[0] * 1000:.0f} ms")
    return results


def _percentiles(samples: list[float]) -> tuple[float, float, int]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, len(ordered)


def writes(url: str) -> dict[str, float]:
    """10,000 new ratings with the triggers on; then what the triggers cost a single-row insert, server-side."""
    engine = create_engine(url)
    found: dict[str, float] = {}
    with engine.begin() as conn:
        began = time.perf_counter()
        _run(conn, NEW_RATINGS, {"n": 10_000})
        found["new_ratings"] = time.perf_counter() - began
    # 1,000 single-row INSERTs each, as intake writes (one statement per rating), with the queueing trigger and
    # without it (foreign keys checked both ways), in a transaction rolled back: the database is left as it was.
    single = """DO $$ DECLARE x int; BEGIN FOR x IN SELECT id FROM bench_free ORDER BY id {part} LOOP
        INSERT INTO rating (record_id, level, channel, target, stage, follow_up, answers, comment, real_name, is_bad,
                            adopted, source_system, submitted_at)
        VALUES (x, 'satisfied', 'pc', 'staff', 'whole', 0, '{{}}', '', false, false, true, 'bench', now());
    END LOOP; END $$"""
    with engine.connect() as conn, conn.begin() as transaction:
        free = "SELECT id FROM servicerecord WHERE source_system = 'bench-new' ORDER BY id LIMIT 2000"
        conn.execute(text(f"CREATE TEMP TABLE bench_free AS {free}"))
        for label, part, switch in (
            ("with_triggers", "LIMIT 1000", None),
            ("without_triggers", "OFFSET 1000", "ALTER TABLE rating DISABLE TRIGGER rollup_dirty_rating_insert"),
        ):
            if switch:
                conn.execute(text(switch))
            began = time.perf_counter()
            conn.execute(text(single.format(part=part)))
            found[label] = (time.perf_counter() - began) / 1000
        transaction.rollback()
    engine.dispose()
    return found


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        db = Database(_settings(args.database_url, data_dir).async_sqlalchemy_url)
    began = time.perf_counter()
    built = await refresh_once(db, full=True)
    build_seconds = time.perf_counter() - began
    print(f"full build: {built.slices} days in {build_seconds:.1f} s", flush=True)
    sizes = await _sizes(db)
    queries = await dashboard_queries(db)
    results = await measure(db, queries, args.rollup_runs, args.raw_runs)
    wrote = writes(args.database_url)
    began = time.perf_counter()
    refreshed = await refresh_once(db)
    refresh_seconds = time.perf_counter() - began
    after = [q for q in queries if q.name in ("region_month", "ranking", "by_day_90")]
    checked = await measure(db, after, 1, 1)
    _print(results, sizes, build_seconds, built.slices, wrote, refresh_seconds, refreshed.slices, len(checked))
    await db.dispose()


async def _sizes(db: Database) -> dict[str, tuple[int, str]]:
    found = {}
    async with db.engine.connect() as conn:
        raw = ("rating", "servicerecord", '"case"', "caseevent")
        for table in (*raw, "ratingrollup", "ratingtotalrollup", "recordrollup", "caserollup"):
            rows = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            size = (await conn.execute(text(f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))"))).scalar()
            found[table.strip('"')] = (rows, str(size))
    return found


def _print(
    results: list[Result],
    sizes: dict[str, tuple[int, str]],
    build_seconds: float,
    build_days: int,
    wrote: dict[str, float],
    refresh_seconds: float,
    refresh_slices: int,
    checked: int,
) -> None:
    print()
    print("| report | source | groups | rollup p50 | rollup p99 | raw p50 | raw p99 | raw p50 / rollup p50 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for result in results:
        (r50, r99, rn), (w50, w99, wn) = result.rollup, result.raw
        query = result.query
        print(
            f"| `{query.name}`: {query.what} | {result.source} | {result.groups} | {r50 * 1000:.0f} ms | "
            f"{r99 * 1000:.0f} ms ({rn} runs) | {w50 * 1000:.0f} ms | {w99 * 1000:.0f} ms ({wn} runs) | "
            f"{w50 / r50:.0f}× |"
        )
    print()
    print(f"full build of the rollup: {build_seconds:.1f} s ({build_days} days)")
    print(
        f"10,000 new ratings (with records, 1 % bad with cases) written in {wrote['new_ratings']:.2f} s with the "
        f"triggers on; incremental refresh after them: {refresh_seconds:.2f} s ({refresh_slices} slices)"
    )
    print(
        f"one single-row rating INSERT (server time, no commit): {wrote['with_triggers'] * 1e6:.0f} µs with the "
        f"queueing trigger, {wrote['without_triggers'] * 1e6:.0f} µs without"
    )
    print(f"after the refresh, rollup == raw for {checked} reports (each compared group by group)")
    print()
    for table, (rows, size) in sizes.items():
        print(f"  {table}: {rows:,} rows, {size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database to EMPTY and use")
    parser.add_argument("--ratings", type=int, default=10_000_000, help="service records to write (≈ ratings)")
    parser.add_argument("--days", type=int, default=365, help="the records' completion times span these last days")
    parser.add_argument("--rollup-runs", type=int, default=100)
    parser.add_argument("--raw-runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="measure the data already there (a previous load)")
    args = parser.parse_args()
    if not args.reuse:
        load(args.database_url, args.ratings, args.days)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
