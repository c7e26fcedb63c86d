"""Benchmark: the rating import (python -m runtime.import_ratings) against a raw COPY of the same file, in one run.

    .venv/bin/python scripts/bench_bulk_import.py [--rows 1000000] [--bad 0.001] [--named 0.1] [--profile FILE]

Makes a scratch PostgreSQL database on 127.0.0.1:5432, migrates it, loads the demo data and one
unrated service record per row, and writes a GB/T 39046 表9 CSV of `rows` ratings (a share `bad` of
them 差评, a share `named` with 评价人). Then, on the same database and the same file:

- baseline: `COPY bare FROM STDIN (FORMAT csv)` of the file's bytes into a table of nine text columns
  (no index), through psycopg's `cursor.copy`: the database's own speed for these rows;
- import: `runtime.import_ratings.import_file`, the command's own code, into the real schema (ratings,
  each bad one's case and outbox row, every rating's side rows), in chunks of 5,000;
- the real tables' own cost: the rows the import wrote inserted again, server-side, into copies of
  their tables with the same indexes: what the schema costs before any work of ours.

Prints both times, rows per second and the ratio baseline/import (1.0 = as fast as raw COPY), checks
the counts, and drops the database. With --profile the import runs under cProfile and the functions
taking the most time are printed (the stats file is kept). Compare ratios of runs made side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import io
import os
import pstats
import random
import signal
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config import Settings  # noqa: E402
from migrations import upgrade  # noqa: E402
from models.db import Database  # noqa: E402
from models.deadlines import CHINA_TZ  # noqa: E402
from models.pii import configure_pii_keys, new_pii_key  # noqa: E402
from runtime.import_ratings import import_file  # noqa: E402
from runtime.seed import seed_demo  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TABLE9 = ["办件编号", "评价渠道", "评价人", "评价时间", "评价次数", "满意度", "满意度代码", "文字评价", "行政区划"]
CHANNELS = ["PC端", "移动服务端", "二维码", "政务大厅平板电脑", "政务大厅其他终端", "电话", "短信"]
GOOD = [("非常满意", "1"), ("满意", "2"), ("基本满意", "3")]
BAD = [("不满意", "4"), ("非常不满意", "5")]
FLOOR_TABLES = ("rating", "upstreampush", "ratingfingerprint")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
COMMENTS = ["办事很快", "窗口服务热情", "材料一次讲清楚了", "网上办理方便"]
BAD_COMMENTS = ["排队两个小时", "材料被退回三次", "工作人员态度冷淡", "系统总是提交失败"]


def write_table9(path: Path, rows: int, bad: float, named: float, seed: int = 7) -> int:
    """A 表9 CSV of `rows` ratings of records BENCH-1…; returns how many are bad."""
    rng = random.Random(seed)
    start = datetime.now(CHINA_TZ) - timedelta(days=30)
    bad_count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(TABLE9)
        for n in range(1, rows + 1):
            is_bad = rng.random() < bad
            bad_count += is_bad
            label, code = rng.choice(BAD if is_bad else GOOD)
            rater = rng.choice(SURNAMES) + "某" if rng.random() < named else ""
            comment = rng.choice(BAD_COMMENTS) if is_bad else (rng.choice(COMMENTS) if rng.random() < 0.05 else "")
            when = (start + timedelta(seconds=n * 2)).strftime("%Y%m%dT%H%M%S")
            writer.writerow([f"BENCH-{n}", rng.choice(CHANNELS), rater, when, "1", label, code, comment, "370600"])
    return bad_count


def make_database(name: str, rows: int, settings: Settings) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(settings.sqlalchemy_url)
    asyncio.run(_seed(settings))
    with psycopg.connect(_url(name), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO servicerecord (record_no, item_id, unit_id, applicant_type, service_channel, source_system,"
            " completed_at, created_at) SELECT 'BENCH-' || g, 1, 2, 'individual', 'online', 'demo-hall',"
            # Each completed an hour before its rating in the file (write_table9): inside its 补充评价 window.
            " now() - interval '30 days' + g * interval '2 seconds' - interval '1 hour', now()"
            " FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.execute("VACUUM ANALYZE servicerecord")


async def _seed(settings: Settings) -> None:
    db = Database(settings.async_sqlalchemy_url)
    try:
        await seed_demo(db, settings)
    finally:
        await db.dispose()


def raw_copy(name: str, path: Path) -> float:
    """Seconds to COPY the file's bytes into a bare table of text columns (emptied first, not timed)."""
    columns = ", ".join(f"c{i} text" for i in range(len(TABLE9)))
    with psycopg.connect(_url(name), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS bare_table9; CREATE TABLE bare_table9 ({columns})")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor, cursor.copy("COPY bare_table9 FROM STDIN (FORMAT csv, HEADER true)") as copy, path.open("rb") as data:  # fmt: skip
            while block := data.read(1 << 20):
                copy.write(block)
        return time.perf_counter() - started


def schema_floor(name: str) -> float:
    """Seconds the database itself needs to store the import's rows in tables shaped like the real ones.

    The rows the import wrote (ratings, upstream pushes, fingerprints) are inserted again, server-side,
    into copies with the same columns, defaults and indexes (no foreign keys): no parsing, no Python,
    no network. What the real schema costs beyond a bare table, before any work of ours.
    """
    with psycopg.connect(_url(name), autocommit=True) as conn:
        total = 0.0
        for table in FLOOR_TABLES:
            conn.execute(f'CREATE TABLE "floor_{table}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING INDEXES)')
            started = time.perf_counter()
            conn.execute(f'INSERT INTO "floor_{table}" SELECT * FROM "{table}"')
            total += time.perf_counter() - started
        return total


def counts(name: str) -> dict[str, int]:
    with psycopg.connect(_url(name)) as conn:
        return {
            table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # type: ignore[index]
            for table in ("rating", "case", "outboxentry", "upstreampush", "bare_table9")
        }


def _url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bad", type=float, default=0.001, help="share of 差评 (each opens a case)")
    parser.add_argument("--named", type=float, default=0.1, help="share of rows with 评价人 (encrypted at rest)")
    parser.add_argument("--profile", type=Path, help="run the import under cProfile and keep the stats here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still drop the scratch database

    name = f"hcp_bench_import_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="hcp-bench-import-") as tmp:
        settings = Settings(
            database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
            data_dir=Path(tmp),
            pii_keys=new_pii_key(),
            secret_key="bench-signing-key-" + "x" * 32,
        )
        configure_pii_keys(settings.pii_key_list())
        path = Path(tmp) / "table9.csv"
        try:
            print(f"preparing {args.rows:,} records and a 表9 file in database {name} …", flush=True)
            make_database(name, args.rows, settings)
            bad = write_table9(path, args.rows, args.bad, args.named)
            size = path.stat().st_size
            load_before = os.getloadavg()[0]
            baseline_before = raw_copy(name, path)
            profiler = cProfile.Profile() if args.profile else None
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            tally = asyncio.run(import_file(settings, path, "national-platform", "csv", progress_out=io.StringIO()))
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - started
            # The baseline again, after: the machine's load moves both, so the ratio uses their mean.
            baseline_after = raw_copy(name, path)
            load_after = os.getloadavg()[0]
            floor = schema_floor(name)
            found = counts(name)
        finally:
            if not args.keep:
                with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    assert tally.written == args.rows and tally.rejected_count == 0, tally.rejected
    assert found["rating"] == args.rows and found["case"] == bad == found["outboxentry"] == tally.cases, found
    baseline = (baseline_before + baseline_after) / 2
    print(f"rows {args.rows:,} ({size / 1e6:.0f} MB), bad {bad:,}, named share {args.named}")
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} on {os.cpu_count()} cores")
    print(f"raw COPY into a bare table:   {baseline:8.2f} s  {args.rows / baseline:10,.0f} rows/s"
          f"  (before {baseline_before:.2f} s, after {baseline_after:.2f} s)")  # fmt: skip
    print(
        f"the real tables' own cost:    {floor:8.2f} s  {args.rows / floor:10,.0f} rows/s"
        f"  (INSERT … SELECT of the written rows into copies with the same indexes: {', '.join(FLOOR_TABLES)})"
    )
    print(f"import into the real schema:  {seconds:8.2f} s  {args.rows / seconds:10,.0f} rows/s")
    print(f"ratio (COPY time / import time): {baseline / seconds:.3f}  (target ≥ 0.5)")
    print(f"ratio (COPY time / the real tables' own cost): {baseline / floor:.3f}  (the best any import could do)")
    print(f"written: ratings {found['rating']:,}, cases {found['case']:,}, outbox {found['outboxentry']:,}, "
          f"upstream pushes {found['upstreampush']:,}")  # fmt: skip
    if profiler is not None and args.profile is not None:
        profiler.dump_stats(args.profile)
        stats = pstats.Stats(str(args.profile))
        print("\nimport: functions by own time (tottime)")
        stats.sort_stats("tottime").print_stats(15)
        print("import: functions by cumulative time")
        stats.sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
