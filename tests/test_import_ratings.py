"""python -m runtime.import_ratings on SQLite and PostgreSQL: 表9 and API columns, rejects by reason, re-imports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlmodel import col, select

from config import Settings
from models.bulk_intake import IntakeItem, ItemReady, PolicyCache, prepare
from models.case.records import Case
from models.codes import code_book
from models.db import Database
from models.deadlines import CHINA_TZ
from models.outbox import OutboxEntry
from models.rating_intake import stage_with_ratings
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ServiceRecord
from models.suspicion.records import RatingFingerprint
from models.table9_export import Table9Export, day_range
from models.table9_import import RowReader, read_header
from models.upstream import UpstreamPush
from runtime.import_copy import RATING_COLUMNS, copy_chunk
from runtime.import_ratings import import_file
from runtime.import_run import Importer, Row
from runtime.import_side_rows import SIDE_TABLES, fingerprint_row, push_row
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating
from tests.support.intake import add_records, count
from tests.support.waiting import eventually

TABLE9 = ["办件编号", "评价渠道", "评价人", "评价时间", "评价次数", "满意度", "满意度代码", "文字评价", "行政区划"]
RATED_AT = (datetime.now(CHINA_TZ) - timedelta(days=2)).replace(microsecond=0)
WHEN = RATED_AT.strftime("%Y%m%dT%H%M%S")


def table9_rows() -> list[list[str]]:
    """Ten good ratings, two bad ones, and eight rows each wrong in its own way (their line is index + 2)."""
    rows = [
        [f"IMP-{n:04d}", ["PC端", "电话", "4"][n % 3], "", WHEN, "1", "", str(1 + n % 3), "", "370600"]
        for n in range(1, 11)
    ]
    rows += [
        ["IMP-0011", "政务大厅平板电脑", "王五", WHEN, "1", "非常不满意", "5", "等了两个小时", "370600"],
        ["IMP-0012", "短信", "", WHEN, "", "差", "4", "材料被退回三次", "370600000000"],
        ["NO-SUCH", "PC端", "", WHEN, "1", "", "1", "", "370600"],  # line 14: unknown record
        ["IMP-0013", "PC端", "", WHEN, "1", "", "9", "", "370600"],  # 15: a code GB/T A.8 lacks
        ["IMP-0014", "PC端", "", WHEN, "1", "满意", "5", "", "370600"],  # 16: label and code disagree
        ["IMP-0015", "PC端", "", WHEN, "2", "", "1", "", "370600"],  # 17: a 追评
        ["IMP-0016", "PC端", "", "2026-13-45", "1", "", "1", "", "370600"],  # 18: not a time
        ["IMP-0017", "PC端", "", WHEN, "1", "", "1", "", "3706"],  # 19: not a region code
        ["IMP-0018", "传真", "", WHEN, "1", "", "1", "", "370600"],  # 20: no such channel
        ["IMP-0001", "PC端", "", WHEN, "1", "", "5", "", "370600"],  # 21: IMP-0001 again, said otherwise
    ]
    return rows


REJECTED = {
    "unknown_record": [14],
    "unknown_code": [15],
    "inconsistent_satisfaction": [16],
    "follow_up_rating": [17],
    "bad_time": [18],
    "bad_region_code": [19],
    "unknown_channel": [20],
    "duplicate_item": [21],
}


def write_csv(path: Path, headers: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        csv.writer(out).writerows([headers, *rows])
    return path


async def test_a_table9_file_is_imported_with_rejects_by_reason_and_a_reimport_writes_nothing(
    settings: Settings, db: Database, demo: DemoCredentials, tmp_path: Path
) -> None:
    await add_records(db, 18)
    path = write_csv(tmp_path / "ratings.csv", TABLE9, table9_rows())
    tally = await import_file(settings, path, "national-platform", "csv", progress_out=io.StringIO())
    assert (tally.rows, tally.written, tally.cases, tally.already) == (20, 12, 2, 0)
    assert tally.rejected == REJECTED
    assert await count(db, Rating) == 12
    assert await count(db, Case) == 2 and await count(db, OutboxEntry) == 2
    assert await count(db, UpstreamPush) == 12  # every rating is reported upstream, imported ones too
    assert await count(db, RatingFingerprint) == 12  # and fingerprinted for the suspicious-rating detectors

    async with db.session() as session:
        ratings = {r.record_id: r for r in (await session.exec(select(Rating))).all()}
        bad = (await session.exec(select(Rating).where(col(Rating.is_bad)).order_by(col(Rating.id)))).all()
        outbox = (await session.exec(select(OutboxEntry).order_by(col(OutboxEntry.case_id)))).all()
        cases = (await session.exec(select(Case).order_by(col(Case.id)))).all()
    assert [(r.level, r.channel, r.comment) for r in bad] == [
        (RatingLevel.VERY_DISSATISFIED, RatingChannel.HALL_TABLET, "等了两个小时"),
        (RatingLevel.DISSATISFIED, RatingChannel.SMS, "材料被退回三次"),
    ]
    assert bad[0].rater_name == "王五" and bad[0].real_name is False  # a name alone is no contact for a callback
    assert [c.rating_id for c in cases] == [r.id for r in bad]
    assert [o.case_id for o in outbox] == [c.id for c in cases]
    assert {o.payload["input"]["rating_id"] for o in outbox} == {r.id for r in bad}
    assert all(r.submitted_at == RATED_AT.astimezone(UTC) and r.source_system == "national-platform" for r in bad)
    assert {r.channel for r in ratings.values()} >= {RatingChannel.PC, RatingChannel.PHONE, RatingChannel.HALL_TABLET}

    again = await import_file(settings, path, "national-platform", "csv", progress_out=io.StringIO())
    assert (again.rows, again.written, again.cases, again.already) == (20, 0, 0, 12)
    # Line 21 now meets IMP-0001's rating in the database rather than in the file: the same refusal, by its name.
    assert again.rejected == {**{k: v for k, v in REJECTED.items() if k != "duplicate_item"}, "already_rated": [21]}
    assert await count(db, Rating) == 12 and await count(db, Case) == 2 and await count(db, OutboxEntry) == 2
    assert await count(db, UpstreamPush) == 12


async def test_the_command_prints_progress_and_a_summary_and_writes_the_rejects(
    settings: Settings, db: Database, demo: DemoCredentials, tmp_path: Path
) -> None:
    await add_records(db, 18)
    path = write_csv(tmp_path / "ratings.csv", TABLE9, table9_rows())
    rejects = tmp_path / "rejects.csv"
    env = {
        **os.environ,
        "HCP_DATABASE_URL": settings.database_url,
        "HCP_PII_KEYS": settings.pii_keys,
        "HCP_SECRET_KEY": settings.secret_key,
        "HCP_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "runtime.import_ratings", str(path), "--rejects", str(rejects), "--chunk", "7"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # some rows were rejected
    assert "行/秒" in done.stderr and "100.0%" in done.stderr
    assert "已接收 accepted: 12（其中差评 bad, cases opened: 2）" in done.stdout
    assert "拒收 rejected: 8" in done.stdout
    assert "unknown_record ×1：办件编号 NO-SUCH 未登记 — 行 14" in done.stdout
    with rejects.open(encoding="utf-8-sig") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["行号", "原因代码", "列", "说明", *TABLE9]
    # In chunks of 7, line 21 comes after IMP-0001's first rating was committed: already rated, not a duplicate.
    expected = {**REJECTED, "already_rated": REJECTED["duplicate_item"]}
    expected.pop("duplicate_item")
    assert [(int(r[0]), r[1]) for r in written[1:]] == sorted((rows[0], code) for code, rows in expected.items())
    code_row = next(r for r in written if r[1] == "unknown_code")
    assert code_row[2] == "满意度代码" and "9" in code_row[3] and "national-platform" in code_row[3]
    assert await count(db, Rating) == 12

    again = subprocess.run(
        [sys.executable, "-m", "runtime.import_ratings", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "已导入过 already imported: 12" in again.stdout and "已接收 accepted: 0" in again.stdout
    assert await count(db, Rating) == 12 and await count(db, Case) == 2

    unknown = write_csv(tmp_path / "odd.csv", ["办件编号", "满意度代码", "颜色"], [["IMP-0001", "1", "红"]])
    refused = subprocess.run(
        [sys.executable, "-m", "runtime.import_ratings", str(unknown)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "不认识的列 '颜色'" in refused.stderr


async def test_api_field_names_in_json_through_a_provincial_source(
    settings: Settings, db: Database, demo: DemoCredentials, tmp_path: Path
) -> None:
    await add_records(db, 4)
    objects = [
        {"record_no": "IMP-0001", "satisfaction_code": 1, "channel_code": 7, "tag_codes": ["106", "101"],
         "real_name": True, "rater": {"phone": "13800001111"}, "comment": "态度差"},
        {"record_no": "IMP-0002", "satisfaction_code": "5", "channel_code": "6", "target": "staff"},
        {"record_no": "IMP-0003", "satisfaction_code": "1", "channel_code": "6", "tag_codes": ["506"]},
        {"record_no": "IMP-0004", "level": "satisfied", "channel": "mobile", "real_name": True},
        {"record_no": "IMP-0004", "colour": "red"},
    ]  # fmt: skip
    path = tmp_path / "ratings.jsonl"
    path.write_text("\n".join(json.dumps(o, ensure_ascii=False) for o in objects), encoding="utf-8")
    tally = await import_file(settings, path, "zhejiang", "json", progress_out=io.StringIO())
    assert (tally.written, tally.cases) == (2, 1)
    assert {code: rows for code, rows in tally.rejected.items()} == {
        "tag_level_mismatch": [3],
        "invalid_request": [4],
        "unknown_column": [5],
    }
    refused = {refused.position: refused for refused, _ in tally.rejects}
    assert (refused[3].field, refused[3].value, refused[3].source) == ("tag_codes.0", "506", "zhejiang")
    assert refused[4].field is None and "real-name" in refused[4].message  # 实名 needs a phone or email
    assert "colour" in refused[5].message
    async with db.session() as session:
        first = (await session.exec(select(Rating).order_by(col(Rating.id)))).first()
    assert first is not None and (first.level, first.channel) == (
        RatingLevel.VERY_DISSATISFIED,
        RatingChannel.SYSTEM_DEFAULT,
    )
    assert first.answers == {"测评内容": ["very_dissatisfied/06", "very_dissatisfied/01"]}
    assert first.rater_phone == "13800001111" and first.source_system == "zhejiang"


def test_the_copy_writes_every_column_of_the_rating_table() -> None:
    assert set(RATING_COLUMNS) == set(Rating.__table__.columns.keys())  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_rating_written_meanwhile_makes_the_chunk_judge_again(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient
) -> None:
    """PostgreSQL only: the COPY path's conflict (SQLite's path is the API's write_ratings, tested there).

    Every intake path locks the records it judges (models/rating_coverage.py), so here the rating in the
    way is written by a plain INSERT, as a writer that does not go through intake would.
    """
    await add_records(db, 3)
    rows = [[f"IMP-000{n}", "PC端", "", WHEN, "1", "", "5", "", "370600"] for n in (1, 2, 3)]
    book = code_book()
    importer = Importer(
        db, settings, lambda columns: RowReader(columns, book.sources["national-platform"], book, datetime.now(UTC)),
        "national-platform",
    )  # fmt: skip
    numbered: list[Row] = [(n + 2, dict(zip(TABLE9, row, strict=True)), row) for n, row in enumerate(rows)]
    reader = importer.reader_for(read_header(TABLE9))
    items = [reader.item(position, raw) for position, raw, _ in numbered if isinstance(raw, dict)]
    async with db.session() as session:
        judged = await prepare(
            session, [i for i in items if isinstance(i, IntakeItem)], "national-platform", PolicyCache()
        )
        # Between judging and writing, a rating of IMP-0002 appears.
        async with db.session() as other:
            record = (await other.exec(select(ServiceRecord).where(ServiceRecord.record_no == "IMP-0002"))).one()
            assert record.id is not None
            other.add(Rating(record_id=record.id, level=RatingLevel.SATISFIED, channel=RatingChannel.PC,
                             target=RatingTarget.ITEM, is_bad=False, source_system="demo-hall"))  # fmt: skip
            await other.commit()
        with pytest.raises(psycopg.errors.UniqueViolation, match="uq_rating_record_target"):
            await copy_chunk(session, settings, [j for j in judged if isinstance(j, ItemReady)], "national-platform")
        await session.rollback()
    assert await count(db, Rating) == 1

    await importer.chunk(numbered)  # the same rows through the importer: judged again, written once
    assert (importer.tally.written, importer.tally.cases) == (2, 2)
    assert importer.tally.rejected == {"already_rated": [3]}
    assert await count(db, Rating) == 3 and await count(db, Case) == 2 and await count(db, OutboxEntry) == 2


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_rating_sent_while_a_chunk_is_judged_waits_for_it(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient
) -> None:
    """The API's rating of a record the chunk has judged waits for the chunk's commit, then finds it rated (409)."""
    await add_records(db, 2)
    rows = [[f"IMP-000{n}", "PC端", "", WHEN, "1", "", "5", "", "370600"] for n in (1, 2)]
    book = code_book()
    reader = RowReader(read_header(TABLE9), book.sources["national-platform"], book, datetime.now(UTC))
    items = [reader.item(n, dict(zip(TABLE9, row, strict=True))) for n, row in enumerate(rows, start=2)]
    async with db.session() as session:
        judged = await prepare(
            session, [i for i in items if isinstance(i, IntakeItem)], "national-platform", PolicyCache()
        )
        sent = asyncio.create_task(
            offline_api.post("/api/v1/ratings", json=bad_rating("IMP-0002"), headers={"X-API-Key": demo.api_key})
        )
        await eventually(lambda: _waiting_for_a_lock(db))  # the API rating waits for the chunk's lock
        assert not sent.done()
        await copy_chunk(session, settings, [j for j in judged if isinstance(j, ItemReady)], "national-platform")
        await session.commit()
    answer = await sent
    assert answer.status_code == 409 and answer.json()["detail"]["code"] == "already_rated"
    assert await count(db, Rating) == 2 and await count(db, Case) == 2


async def _waiting_for_a_lock(db: Database) -> bool:
    async with db.session() as session:
        waiting = await (await session.connection()).execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return bool(waiting.scalar_one())


async def test_the_imports_side_rows_are_what_intake_stages_for_each_rating(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient
) -> None:
    """The COPY path builds push and fingerprint rows itself: column by column, they must be stage_with_ratings'."""
    headers = {"X-API-Key": demo.api_key}
    for body in (bad_rating("DEMO-0001", target="staff"), bad_rating("DEMO-0002", level="satisfied", rater=None,
                 real_name=False, comment="")):  # fmt: skip
        assert (await offline_api.post("/api/v1/ratings", json=body, headers=headers)).status_code == 201
    async with db.session() as session:
        rated = [
            (await session.get(ServiceRecord, rating.record_id), rating)
            for rating in (await session.exec(select(Rating).order_by(col(Rating.id)))).all()
        ]
        session.expunge_all()
        stage_with_ratings(session, settings, rated, None)  # type: ignore[arg-type]
        staged = list(session.new)
        await session.rollback()
    assert {type(o).__tablename__ for o in staged} == SIDE_TABLES, "the import must write every side row too"
    key = settings.signing_key()
    pushes = sorted((o for o in staged if isinstance(o, UpstreamPush)), key=lambda p: p.subject_id)
    for record, rating in rated:
        assert record is not None and rating.id is not None
        values = {name: getattr(rating, name) for name in RATING_COLUMNS if name != "id"}
        staged_print = next(o for o in staged if isinstance(o, RatingFingerprint) and o.rating_id == rating.id)
        assert fingerprint_row(key, record, rating.id, values) == staged_print.model_dump()
    template = {name: getattr(pushes[0], name) for name in UpstreamPush.model_fields if name != "id"}
    built = push_row(template, pushes[1].subject_id)
    expected = pushes[1].model_dump(exclude={"id"})
    for moment in ("created_at", "next_attempt_at"):  # made a moment apart
        if expected[moment] is not None:
            assert abs((built.pop(moment) - expected.pop(moment)).total_seconds()) < 5
    assert built.pop("push_key") != expected.pop("push_key")
    assert built == expected


async def test_this_systems_own_table9_export_reads_back_row_for_row(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The export (runtime.export_ratings) is a 表9 file too: every row reads, and meets the rating it came from."""
    headers = {"X-API-Key": demo.api_key}
    bodies = [
        bad_rating("DEMO-0001"),
        bad_rating("DEMO-0001", target="staff", level="satisfied"),
        bad_rating("DEMO-0002", comment="=1+1"),
    ]
    for body in bodies:
        assert (await offline_api.post("/api/v1/ratings", json=body, headers=headers)).status_code == 201
    export = Table9Export(db, *day_range(date.today() - timedelta(days=1), date.today() + timedelta(days=1)))
    path = tmp_path / "export.csv"
    path.write_text("".join([chunk async for chunk in export.chunks()]), encoding="utf-8")
    tally = await import_file(settings, path, "national-platform", "csv", progress_out=io.StringIO())
    # Nothing is written twice, and no row fails to read: each meets its own rating (from another source).
    assert (tally.rows, tally.written, tally.already) == (3, 0, 0)
    assert tally.rejected == {"already_rated": [2, 3, 4]}
    assert await count(db, Rating) == 3
