"""The supplementary window (补充评价) on every way in: the API, the batch, the import, the rater's pages; the contact.

The boundary is the profile's own clock on the working-day calendar: a record completed the
instant before the boundary Clocks.started_before gives is closed now, one completed at it is open.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlmodel import col, select

from config import Settings
from models.calendar import LoadedCalendar, load_calendar
from models.db import Database, utcnow
from models.deadlines import CHINA_TZ
from models.policy_store import load_profile_files
from models.rating_timing import Clocks, TimingRefused, check_window, supplementary_closes_at
from models.ratings import Rating
from models.services import ServiceRecord
from runtime.import_ratings import import_file
from runtime.seed import DemoCredentials
from tests.support.http import csrf_of
from tests.support.intake import add_records, count

YANTAI = load_profile_files()["yantai"]
# Completed on 29 September 2026: 30 Sep, then the National Day holidays, a 调休 Saturday; the fifth
# working day is 12 October, so the window closes at its midnight (tests/test_policy.py checks the walk).
COMPLETED = datetime(2026, 9, 29, 10, 0, tzinfo=CHINA_TZ)
CLOSES = datetime(2026, 10, 13, 0, 0, tzinfo=CHINA_TZ)


def key(demo: DemoCredentials) -> dict[str, str]:
    return {"X-API-Key": demo.api_key}


async def completed_at(db: Database, record_no: str, when: datetime) -> None:
    async with db.session() as session:
        record = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == record_no))).one()
        record.completed_at = when
        session.add(record)
        await session.commit()


async def yantai_boundary(db: Database) -> datetime:
    """Completed before this moment, a Yantai record's window has closed by now (the demo region is Yantai)."""
    async with db.session() as session:
        return Clocks(await load_calendar(session)).started_before(YANTAI.rating.supplementary, utcnow())


def test_the_window_closes_at_midnight_after_the_fifth_working_day_across_national_day() -> None:
    record = ServiceRecord.model_construct(record_no="YT-1", completed_at=COMPLETED)
    clocks = Clocks(LoadedCalendar({}))  # no year loaded: the State Council table of the chinese_calendar package
    assert supplementary_closes_at(COMPLETED, YANTAI.rating, clocks) == CLOSES
    check_window(record, CLOSES - timedelta(seconds=1), YANTAI.rating, clocks)  # 12 Oct 23:59:59: in time
    try:
        check_window(record, CLOSES, YANTAI.rating, clocks)
    except TimingRefused as refused:
        assert refused.code == "rating_window_closed" and refused.closes_at == CLOSES
        assert "5 个工作日" in refused.message and "2026-10-12 24:00" in refused.message
    else:
        raise AssertionError("a rating at 24:00 of the fifth working day was accepted")
    # Every start day of the fortnight: "closed by now" is exactly "started before the boundary".
    for hours in range(0, 24 * 16, 5):
        start = COMPLETED - timedelta(days=2) + timedelta(hours=hours)
        for now in (CLOSES - timedelta(seconds=1), CLOSES, CLOSES + timedelta(days=1, hours=3)):
            boundary = clocks.started_before(YANTAI.rating.supplementary, now)
            assert (clocks.due(start, YANTAI.rating.supplementary) <= now) == (start < boundary)


async def test_the_api_refuses_a_first_rating_after_the_window_and_takes_one_at_the_boundary(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    boundary = await yantai_boundary(db)
    await completed_at(db, "DEMO-0002", boundary - timedelta(seconds=1))
    await completed_at(db, "DEMO-0003", boundary + timedelta(seconds=5))
    late = await offline_api.post(
        "/api/v1/ratings", json={"record_no": "DEMO-0002", "level": "satisfied", "channel": "pc"}, headers=key(demo)
    )
    assert late.status_code == 409, late.text
    detail = late.json()["detail"]
    assert detail["code"] == "rating_window_closed" and detail["field"] == "record_no"
    assert "DEMO-0002" in detail["message"] and "5 个工作日" in detail["message"] and "24:00" in detail["message"]
    in_time = await offline_api.post(
        "/api/v1/ratings", json={"record_no": "DEMO-0003", "level": "satisfied", "channel": "pc"}, headers=key(demo)
    )
    assert in_time.status_code == 201, in_time.text
    assert await count(db, Rating) == 1
    # A link for a closed record is refused too: it could only lead to the refusal.
    link = await offline_api.post("/api/v1/service-records/DEMO-0002/rating-link", headers=key(demo))
    assert link.status_code == 409 and link.json()["detail"]["code"] == "rating_window_closed"


async def test_a_batch_refuses_only_its_late_items(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    boundary = await yantai_boundary(db)
    await completed_at(db, "DEMO-0004", boundary - timedelta(minutes=1))
    items = [
        {"record_no": "DEMO-0004", "level": "satisfied", "channel": "pc"},
        {"record_no": "DEMO-0005", "level": "satisfied", "channel": "pc"},
    ]
    response = await offline_api.post("/api/v1/ratings:batch", json={"items": items}, headers=key(demo))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"], body["written"]) == (1, 1, 1)
    error = body["items"][0]["error"]
    assert error["code"] == "rating_window_closed" and error["value"] == "DEMO-0004" and "24:00" in error["message"]
    assert body["items"][1]["status"] == "accepted"
    # A retry of the accepted item after its window closed is still answered as the first time.
    await completed_at(db, "DEMO-0005", boundary - timedelta(days=3))
    again = await offline_api.post("/api/v1/ratings:batch", json={"items": items[1:]}, headers=key(demo))
    assert again.json()["items"][0]["status"] == "accepted" and again.json()["written"] == 0
    assert await count(db, Rating) == 1


async def test_an_import_judges_a_historical_rating_by_its_own_time(
    settings: Settings, db: Database, demo: DemoCredentials, tmp_path: Path
) -> None:
    await add_records(db, 4)
    for n in range(1, 5):
        await completed_at(db, f"IMP-{n:04d}", COMPLETED)
    when = {
        "IMP-0001": "20261012T235959",  # the last second of the fifth working day: in time
        "IMP-0002": "20261013T000000",  # midnight: the window has closed
        "IMP-0003": "20261002T120000",  # during the holidays, well in time
        "IMP-0004": "",  # no time: judged as made now, years after the window
    }
    path = tmp_path / "history.csv"
    lines = ["办件编号,评价渠道,评价时间,满意度代码"] + [f"{no},PC端,{at},2" for no, at in when.items()]
    path.write_text("\n".join(lines), encoding="utf-8")
    tally = await import_file(settings, path, "national-platform", "csv", progress_out=io.StringIO())
    assert tally.written == 2
    assert tally.rejected == {"rating_window_closed": [3, 5]}
    async with db.session() as session:
        rated = (await session.exec(select(Rating.submitted_at).order_by(col(Rating.submitted_at)))).all()
    assert [at.astimezone(CHINA_TZ) for at in rated] == [
        datetime(2026, 10, 2, 12, 0, tzinfo=CHINA_TZ),
        datetime(2026, 10, 12, 23, 59, 59, tzinfo=CHINA_TZ),
    ]


async def test_the_rating_page_says_the_window_has_closed(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    page = await offline_api.get(f"/q/{demo.rating_token}")  # DEMO-0007's link, open
    assert page.status_code == 200 and "办事评价" in page.text
    boundary = await yantai_boundary(db)
    await completed_at(db, "DEMO-0007", boundary - timedelta(seconds=1))
    closed = await offline_api.get(f"/q/{demo.rating_token}")
    assert closed.status_code == 410 and "评价期限已过" in closed.text and "5 个工作日" in closed.text
    # A form opened in time and sent after the window closed: the same page, nothing written.
    posted = await offline_api.post(
        f"/q/{demo.rating_token}", data={"csrf": csrf_of(page), "identity": "anonymous", "level_item": "satisfied"}
    )
    assert posted.status_code == 410 and "评价期限已过" in posted.text
    assert await count(db, Rating) == 0


async def test_the_applicant_contact_is_kept_encrypted_and_shown_masked(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    record = {
        "record_no": "YT-CONTACT-1",
        "item_code": "370600-XK-0003",
        "unit_code": "YT-SCJ",
        "applicant_type": "individual",
        "service_channel": "online",
        "completed_at": utcnow().isoformat(),
        "applicant_phone": "13900002222",
        "applicant_email": "zhangsan@example.com",
    }
    response = await offline_api.post("/api/v1/service-records", json=record, headers=key(demo))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["applicant_phone"] == "139****2222" and body["applicant_email"] == "z***@example.com"
    async with db.session() as session:
        raw = (
            await (await session.connection()).execute(
                text("SELECT applicant_phone, applicant_email, applicant_phone_check FROM servicerecord "
                     "WHERE record_no = 'YT-CONTACT-1'")
            )
        ).one()  # fmt: skip
        stored = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == "YT-CONTACT-1"))).one()
    assert "13900002222" not in str(raw) and "zhangsan" not in str(raw) and raw[2]  # encrypted; the digest kept
    assert (stored.applicant_phone, stored.applicant_email) == ("13900002222", "zhangsan@example.com")
    bad = await offline_api.post(
        "/api/v1/service-records", json={**record, "record_no": "YT-CONTACT-2", "applicant_email": "not-mail"},
        headers=key(demo),
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["detail"]["errors"][0]["field"] == "applicant_email"
