"""Suspicious-rating detectors on the real intake, both databases: each fires on its pattern and not just below it.

Ratings come in through POST /api/v1/ratings and the rater's QR page; the thresholds are the
profiles' (edited through the admin API where a test needs smaller numbers). A flag lists ratings
and never changes one; intake and the sweep together raise one flag per pattern.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import get_args

import httpx
import pytest

from config import Settings
from models.db import Database, utcnow
from models.policy_store import load_profile_files
from models.ratings import RatingChannel
from models.suspicion import intake
from models.suspicion.records import Detector
from models.suspicion.rules import Channel, SuspicionRules
from models.suspicion.sweep import sweep
from runtime.seed import DemoCredentials
from tests.support.suspicion import all_ratings, backdate, flags, rate, rater, ratings_of, register, set_thresholds

PHONE = "13800138000"


async def sweep_now(db: Database) -> tuple[int, int]:
    """Run the sweep; (flags opened, flags joined)."""
    async with db.session() as session:
        report = await sweep(session, now=utcnow())
    return sum(report.opened.values()), sum(report.joined.values())


async def test_one_phone_rating_many_transactions(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    # The same number however it is written; the item and staff rating of one transaction count once.
    spellings = [PHONE, "+86 138-0013-8000", "86 13800138000"]
    records = [await register(offline_api, demo) for _ in range(9)]
    ids = []
    for n, record_no in enumerate(records[:7]):
        for target in ("item", "staff"):
            ids.append(await rate(offline_api, demo, record_no, target=target, **rater(spellings[n % 3])))
    assert await flags(db) == [], "7 transactions in a day is under the threshold of 8"
    ids.append(await rate(offline_api, demo, records[7], **rater(PHONE)))
    [flag] = await flags(db)
    assert flag.detector == Detector.SAME_PHONE and flag.unit_id == 2 and flag.status == "open"
    assert await ratings_of(db, flag) == set(ids) and flag.rating_count == 15
    assert "评价了 8 个办件（阈值 8 个）" in flag.reason and PHONE not in flag.reason + flag.subject

    ids.append(await rate(offline_api, demo, records[8], **rater(PHONE)))
    [flag] = await flags(db)
    assert flag.rating_count == 16 and await ratings_of(db, flag) == set(ids)

    before = await all_ratings(db)
    assert await sweep_now(db) == (0, 0) and await sweep_now(db) == (0, 0)
    assert len(await flags(db)) == 1 and await all_ratings(db) == before


async def test_one_client_rating_many_transactions_on_the_rater_pages(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await set_thresholds(offline_api, demo, "national", same_client={"ratings": 3})

    async def rate_by_link(user_agent: str) -> None:
        record_no = await register(offline_api, demo, online=True)
        link = await offline_api.post(
            f"/api/v1/service-records/{record_no}/rating-link", headers={"X-API-Key": demo.api_key}
        )
        path = httpx.URL(link.json()["url"]).path
        page = await offline_api.get(path, headers={"User-Agent": user_agent})
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        form = {"csrf": csrf, "identity": "anonymous", "level_item": "very_satisfied"}
        answer = await offline_api.post(path, data=form, headers={"User-Agent": user_agent})
        assert answer.status_code == 200, answer.text

    for _ in range(2):
        await rate_by_link("Phone A")
    for _ in range(2):
        await rate_by_link("Phone B")  # the same address with another browser is another client
    assert await flags(db) == []
    await rate_by_link("Phone A")
    [flag] = await flags(db)
    assert flag.detector == Detector.SAME_CLIENT and flag.rating_count == 3
    assert "同一终端" in flag.reason and "127.0.0.1" not in flag.reason + flag.subject


async def test_a_burst_of_good_ratings_for_one_staff_member(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    records = [await register(offline_api, demo) for _ in range(11)]
    good = [await rate(offline_api, demo, record_no, target="staff") for record_no in records[:9]]
    await rate(offline_api, demo, records[9], target="staff", level="dissatisfied")  # not a good rating
    assert await flags(db) == []
    good.append(await rate(offline_api, demo, records[10], target="staff", level="very_satisfied"))
    [flag] = await flags(db)
    assert flag.detector == Detector.STAFF_BURST and await ratings_of(db, flag) == set(good)
    assert "陈窗口（工号 SCJ-001）在 30 分钟内获得 10 条好评（阈值 10 条）" in flag.reason


async def test_good_ratings_far_above_a_staff_members_usual_rate(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    numbers = {"factor": 3, "min_ratings": 3, "period": "1d", "baseline": "4d"}
    await set_thresholds(offline_api, demo, "yantai", staff_rate=numbers, staff_burst={"ratings": 100})
    now = utcnow()
    for k in range(1, 9):  # two a day over the four days before: usually 2 a day
        rating_id = await rate(offline_api, demo, await register(offline_api, demo), target="staff")
        await backdate(db, [rating_id], now - timedelta(days=1, hours=11 * k))
    recent = [await rate(offline_api, demo, await register(offline_api, demo), target="staff") for _ in range(5)]
    assert await sweep_now(db) == (0, 0), "5 today is over the minimum of 3 but under 3 × the usual 2"
    recent.append(await rate(offline_api, demo, await register(offline_api, demo), target="staff"))
    assert await sweep_now(db) == (1, 0)
    [flag] = await flags(db)
    assert flag.detector == Detector.STAFF_RATE and await ratings_of(db, flag) == set(recent)
    assert "最近 1 天内获得 6 条好评，此前 4 天平均每 1 天 2.0 条，为平常的 3.0 倍" in flag.reason
    assert await sweep_now(db) == (0, 0)


async def test_repeated_bad_reviews_from_one_rater_of_one_unit(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    bad = {"level": "very_dissatisfied", "comment": "不满意", **rater(PHONE)}
    scj = [await rate(offline_api, demo, await register(offline_api, demo), **bad) for _ in range(2)]
    await rate(offline_api, demo, await register(offline_api, demo, unit="YT-RSJ"), **bad)  # another unit
    await rate(offline_api, demo, await register(offline_api, demo), **{**bad, "level": "basically_satisfied"})
    assert await flags(db) == []
    scj.append(await rate(offline_api, demo, await register(offline_api, demo), **bad))
    [flag] = await flags(db)
    assert flag.detector == Detector.REPEATED_BAD and await ratings_of(db, flag) == set(scj) and flag.unit_id == 2
    assert "对烟台市市场监督管理局作出 3 次差评（阈值 3 次）" in flag.reason and PHONE not in flag.reason


async def test_identical_comments_and_scores_across_ratings(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    same = {"answers": {"服务效率": 5, "服务态度": 5}}
    texts = ["窗口人员态度非常好，办事效率高！", "窗口人员态度非常好 办事效率高", "窗口人员态度非常好。办事效率高"]
    copies = [
        await rate(offline_api, demo, await register(offline_api, demo), comment=texts[n % 3], **same) for n in range(4)
    ]
    for _ in range(6):  # short praise is what many people write: never compared
        await rate(offline_api, demo, await register(offline_api, demo), comment="很满意，谢谢", **same)
    await rate(offline_api, demo, await register(offline_api, demo), comment=texts[0], answers={"服务效率": 4})
    assert await flags(db) == []
    copies.append(await rate(offline_api, demo, await register(offline_api, demo), comment=texts[1], **same))
    [flag] = await flags(db)
    assert flag.detector == Detector.IDENTICAL_COMMENT and await ratings_of(db, flag) == set(copies)
    assert "5 个办件的评价在 7 天内文字评价（不少于 8 个字）与各项评分完全相同" in flag.reason


async def test_a_constant_offset_between_completion_and_rating(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await set_thresholds(offline_api, demo, "national", constant_offset={"ratings": 5})

    async def rated(after: timedelta) -> int:
        record_no = await register(offline_api, demo, online=True, completed_at=utcnow() - after)
        return await rate(offline_api, demo, record_no, channel="pc", level="very_satisfied")

    for hours in (3, 7):  # people: hours apart
        await rated(timedelta(hours=hours))
    job = [await rated(timedelta(minutes=5)) for _ in range(4)]
    assert await sweep_now(db) == (0, 0), "4 at a fixed offset is under 5"
    job.append(await rated(timedelta(minutes=5)))
    assert await sweep_now(db) == (0, 0), "5 of 7 is 71%, under the 80% share"
    job += [await rated(timedelta(minutes=5)) for _ in range(3)]
    assert await sweep_now(db) == (1, 0)
    [flag] = await flags(db)
    assert flag.detector == Detector.CONSTANT_OFFSET and await ratings_of(db, flag) == set(job)
    assert "10 条「PC端」评价中，8 条（80%）都在办结后约 5 分" in flag.reason


async def test_a_channel_the_source_system_cannot_have(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    admin = {"Authorization": "Bearer " + (await offline_api.post("/api/v1/auth/token", data={"username": "admin", "password": demo.passwords["admin"]})).json()["access_token"]}  # fmt: skip
    other = await offline_api.post("/api/v1/admin/api-keys", json={"name": "统一评价平台", "source_system": "platform"}, headers=admin)  # fmt: skip
    platform = {"X-API-Key": other.json()["key"]}
    await rate(offline_api, demo, "DEMO-0007", channel="hall_tablet")  # the hall's own device
    await rate(offline_api, demo, "DEMO-0002", channel="mobile")  # an online transaction on a phone
    by_platform = await offline_api.post("/api/v1/ratings", json={"record_no": "DEMO-0004", "level": "satisfied", "channel": "pc"}, headers=platform)  # fmt: skip
    assert by_platform.status_code == 201  # another system's PC portal: nothing to say
    assert await flags(db) == []
    made = [
        await rate(offline_api, demo, record_no, channel="pc", level="very_satisfied")
        for record_no in ("DEMO-0001", "DEMO-0003")
    ]
    [flag] = await flags(db)
    assert flag.detector == Detector.CHANNEL_MISMATCH and await ratings_of(db, flag) == set(made)
    assert flag.unit_id == 1, "ratings of two units: the office above both reviews it"
    assert "来源系统 demo-hall 为它自己登记的窗口办件提交了「PC端」渠道的评价" in flag.reason
    await rate(offline_api, demo, "DEMO-0005", channel="hall_terminal")  # an online transaction on a hall device
    assert [f.detector for f in await flags(db)] == [Detector.CHANNEL_MISMATCH] * 2


async def test_intake_stands_when_a_check_fails_and_the_sweep_flags_it(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    async def broken(*_args: object) -> list[object]:
        raise RuntimeError("detector down")

    monkeypatch.setattr(intake, "_findings", broken)
    rating_id = await rate(offline_api, demo, "DEMO-0001", channel="pc")
    assert await flags(db) == [] and "left to the sweep" in caplog.text
    monkeypatch.undo()
    before = await all_ratings(db)
    # The command a cron job or a Temporal Schedule runs; a second run finds nothing new.
    assert sweep_command(settings, tmp_path) == "新增可疑评价标记 1 条，已有标记新增评价 0 处"
    assert sweep_command(settings, tmp_path) == "新增可疑评价标记 0 条，已有标记新增评价 0 处"
    [flag] = await flags(db)
    assert await ratings_of(db, flag) == {rating_id} and await all_ratings(db) == before


def sweep_command(settings: Settings, data_dir: Path) -> str:
    env = {**os.environ, "HCP_DATABASE_URL": settings.database_url, "HCP_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "runtime.sweep_suspicious"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_code_defaults_are_the_national_numbers() -> None:
    # A profile version stored before the section existed is judged by the defaults: the national numbers.
    national = load_profile_files()["national"].suspicion.model_dump(mode="json")
    defaults = SuspicionRules().model_dump(mode="json")
    for rules in (national, defaults):
        for rule in rules.values():
            rule.pop("source")
    assert national == defaults
    assert set(get_args(Channel)) <= {channel.value for channel in RatingChannel}
