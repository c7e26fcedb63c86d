"""Ratings as GB/T 39046-2020 表9 CSV: the API's export and the command's, on both databases."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import update
from sqlmodel import col, select

from config import PROJECT_ROOT, Settings
from models.audit import AuditEvent
from models.db import Database
from models.deadlines import CHINA_TZ
from models.ratings import Rating, RatingChannel
from models.upstream_fields import CHANNEL_WORDS
from runtime.seed import DemoCredentials
from tests.support.http import RATER, bad_rating, login

HEADER = [
    "办件编号",
    "评价渠道",
    "评价人",
    "评价时间",
    "评价次数",
    "满意度",
    "满意度代码",
    "文字评价",
    "行政区划",
    "评价对象",
    "评价环节",
]


async def rated_on(db: Database, rating_id: int, moment: datetime) -> None:
    async with db.session() as session:
        await session.exec(update(Rating).where(col(Rating.id) == rating_id).values(submitted_at=moment))
        await session.commit()


async def three_ratings(api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    """The last second of 20 November, midnight starting the 21st, and noon on the 22nd (China time)."""
    key = {"X-API-Key": demo.api_key}
    bodies = [
        {"record_no": "DEMO-0002", "level": "satisfied", "channel": "mobile", "comment": '=HYPERLINK("x")'},
        bad_rating("DEMO-0001", target="staff", channel="qr_code"),
        {"record_no": "DEMO-0003", "level": "basically_satisfied", "channel": "sms", "stage": "completion"},
    ]
    moments = [
        datetime(2026, 11, 20, 23, 59, 59, tzinfo=CHINA_TZ),
        datetime(2026, 11, 21, 0, 0, 0, tzinfo=CHINA_TZ),
        datetime(2026, 11, 22, 12, 0, 0, tzinfo=CHINA_TZ),
    ]
    for body, moment in zip(bodies, moments, strict=True):
        created = await api.post("/api/v1/ratings", json=body, headers=key)
        assert created.status_code == 201, created.text
        await rated_on(db, created.json()["rating_id"], moment)


def rows_of(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())
    text = content.decode("utf-8").removeprefix("\ufeff")
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text, newline="")))


async def test_export_is_table9_by_china_days_for_administrators(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await three_ratings(offline_api, demo, db)
    admin = await login(offline_api, "admin", demo.passwords["admin"])

    whole = await offline_api.get("/api/v1/ratings/export?from=2026-11-20&to=2026-11-22", headers=admin)
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "text/csv; charset=utf-8"
    assert "ratings-20261120-20261122.csv" in whole.headers["content-disposition"]
    assert rows_of(whole.content) == [
        HEADER,
        ["DEMO-0002", "移动服务端", "匿名", "20261120T235959", "1", "满意", "2", "'=HYPERLINK(\"x\")", "370600", "事项", "整体"],
        ["DEMO-0001", "二维码", "张**", "20261121T000000", "1", "非常不满意", "5", "窗口排队两个小时，材料被退回三次", "370600", "工作人员", "整体"],
        ["DEMO-0003", "短信", "匿名", "20261122T120000", "1", "基本满意", "3", "", "370600", "事项", "办结"],
    ]  # fmt: skip
    for value in RATER.values():
        assert value not in whole.content.decode("utf-8")

    # One China day: from its midnight to the next, whatever the UTC date.
    one_day = await offline_api.get("/api/v1/ratings/export?from=2026-11-21&to=2026-11-21", headers=admin)
    assert [row[0] for row in rows_of(one_day.content)[1:]] == ["DEMO-0001"]
    empty = await offline_api.get("/api/v1/ratings/export?from=2026-12-01&to=2026-12-31", headers=admin)
    assert rows_of(empty.content) == [HEADER]

    backwards = await offline_api.get("/api/v1/ratings/export?from=2026-11-22&to=2026-11-20", headers=admin)
    assert backwards.status_code == 422 and backwards.json()["detail"]["field"] == "to"
    too_long = await offline_api.get("/api/v1/ratings/export?from=2025-01-01&to=2026-11-20", headers=admin)
    assert too_long.status_code == 422
    for username in ("supervisor", "scj_staff", "reviewer"):
        other = await login(offline_api, username, demo.passwords[username])
        refused = await offline_api.get("/api/v1/ratings/export?from=2026-11-20&to=2026-11-22", headers=other)
        assert refused.status_code == 403
    assert (await offline_api.get("/api/v1/ratings/export?from=2026-11-20&to=2026-11-22")).status_code == 401

    async with db.session() as session:
        exports = (await session.exec(select(AuditEvent).where(AuditEvent.action == "export.ratings_table9"))).all()
    assert [(e.target_id, e.actor_role) for e in exports] == [
        ("2026-11-20..2026-11-22", "admin"),
        ("2026-11-21..2026-11-21", "admin"),
        ("2026-12-01..2026-12-31", "admin"),
    ]


async def _command(settings: Settings, *args: str) -> tuple[bytes, str]:
    env = {
        **os.environ,
        "HCP_DATABASE_URL": settings.sqlalchemy_url,
        "HCP_PII_KEYS": settings.pii_keys,
        "HCP_DATA_DIR": str(settings.data_dir),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runtime.export_ratings", *args, cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out, err.decode()


async def test_the_command_writes_the_same_file_as_the_api(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, settings: Settings, tmp_path: Path
) -> None:
    await three_ratings(offline_api, demo, db)
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    by_api = await offline_api.get("/api/v1/ratings/export?from=2026-11-20&to=2026-11-22", headers=admin)

    to_stdout, said = await _command(settings, "--from", "2026-11-20", "--to", "2026-11-22")
    assert to_stdout == by_api.content and "3 rating(s) exported" in said
    target = tmp_path / "表9.csv"
    _, said = await _command(settings, "--from", "2026-11-21", "--to", "2026-11-21", "--output", str(target))
    assert [row[0] for row in rows_of(target.read_bytes())[1:]] == ["DEMO-0001"] and "1 rating(s)" in said

    async with db.session() as session:
        exports = (await session.exec(select(AuditEvent).where(AuditEvent.action == "export.ratings_table9"))).all()
    assert [(e.actor, e.reason) for e in exports[1:]] == [("system", "runtime.export_ratings")] * 2


def test_every_channel_has_its_platform_word() -> None:
    """A channel added to RatingChannel must be given the platform's word, or pushing and exporting it fails."""
    assert set(CHANNEL_WORDS) == set(RatingChannel)
    assert CHANNEL_WORDS[RatingChannel.SYSTEM_DEFAULT] == "系统默认评价"
