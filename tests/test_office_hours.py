"""Office hours: reminders and escalations to staff wait for the unit's next working period; the rater's never do."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from activities.mailer import Mailer
from activities.notice_sender import NoticeSender
from activities.notices import write_notices
from activities.sms import FileSmsSink
from config import Settings
from models.case.activity_io import NoticeRequest
from models.case.records import Case
from models.db import Database
from models.deadlines import CHINA_TZ, ChineseStatutoryCalendar
from models.notifications import Notification
from models.office_hours import OfficeHours, next_office_time
from models.policy import DeadlineName
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating, login

HOURS = OfficeHours()
CALENDAR = ChineseStatutoryCalendar()


def _at(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHINA_TZ)


@pytest.mark.parametrize(
    ("due", "sent"),
    [
        (_at(2026, 11, 30, 10, 0), _at(2026, 11, 30, 10, 0)),  # Monday morning: at once
        (_at(2026, 11, 30, 7, 15), _at(2026, 11, 30, 8, 30)),  # before opening: the same morning
        (_at(2026, 11, 30, 17, 30), _at(2026, 12, 1, 8, 30)),  # at closing time: the next morning
        (_at(2026, 11, 27, 21, 0), _at(2026, 11, 30, 8, 30)),  # Friday night: Monday
        (_at(2026, 11, 28, 23, 0), _at(2026, 11, 30, 8, 30)),  # Saturday night: Monday
        (_at(2026, 9, 30, 18, 0), _at(2026, 10, 8, 8, 30)),  # eve of National Day: after the holiday week
        (_at(2026, 10, 9, 20, 0), _at(2026, 10, 10, 8, 30)),  # Friday night before a 调休 Saturday: that Saturday
    ],
)
def test_next_office_time(due: datetime, sent: datetime) -> None:
    assert next_office_time(due, HOURS, CALENDAR) == sent


def test_office_hours_must_open_before_closing() -> None:
    with pytest.raises(ValueError, match="open before"):
        OfficeHours(opens=HOURS.closes, closes=HOURS.opens)


async def test_a_night_escalation_waits_for_monday_and_the_rater_does_not(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, settings: Settings
) -> None:
    created = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    case_id = created.json()["case_id"]
    saturday_night = _at(2026, 11, 28, 23, 0)
    escalation = NoticeRequest(
        kind="escalation", audience="supervisor", key="callback.r1.a1.rung1", deadline=DeadlineName.CALLBACK, rung=1
    )
    feedback = NoticeRequest(
        kind="feedback",
        audience="rater",
        key="feedback.r1",
        message="已整改",
        respond_by=saturday_night + timedelta(days=7),
    )
    async with db.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        summaries = await write_notices(
            session, case, 1, "verification", "0002-overdue", [escalation, feedback], now=saturday_night
        )
        await session.commit()
    monday = _at(2026, 11, 30, 8, 30)
    assert summaries[0]["held_until"] == monday.isoformat() and "held_until" not in summaries[1]
    async with db.session() as session:
        rows = {n.kind: n for n in (await session.exec(select(Notification))).all()}
    assert rows["escalation"].next_attempt_at == monday
    assert rows["feedback"].next_attempt_at is None

    # The relay leaves the held notice alone until then; the case shows when it fell due and when it may go.
    sender = NoticeSender(db, Mailer(settings), FileSmsSink(settings.sms_dir), settings)
    due_now = set(await sender.due())
    assert rows["feedback"].id in due_now and rows["escalation"].id not in due_now
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    notices = (await offline_api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()["notices"]
    [held] = [n for n in notices if n["kind"] == "escalation"]
    assert datetime.fromisoformat(held["held_until"]) == monday and held["sent_at"] is None


async def test_without_enforcement_nothing_waits(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    created = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    reminder = NoticeRequest(kind="reminder", audience="unit_staff", key="callback.r1.a1.remind1")
    async with db.session() as session:
        case = await session.get(Case, created.json()["case_id"])
        assert case is not None
        [summary] = await write_notices(
            session,
            case,
            1,
            "assigned",
            "0002-reminded",
            [reminder],
            now=_at(2026, 11, 28, 23, 0),
            office_hours_enforced=False,
        )
    assert "held_until" not in summary
