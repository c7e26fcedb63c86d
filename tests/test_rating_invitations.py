"""Invitations to unrated applicants (邀评): one link and one SMS or email per record, whatever runs twice or dies.

The sweep's activity is driven directly (as its workflow calls it) and its notices sent by the
worker's own relay code into the file SMS sink and the SMTP sink; the Schedule and the workflow run
on the dev server, and worker.py itself is killed in the middle of a batch.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from datetime import datetime, time, timedelta

import httpx
import pytest
from sqlmodel import col, select
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from activities.mailer import Mailer
from activities.notice_sender import NoticeSender
from activities.rating_sweep import RatingSweepActivities
from activities.sms import FileSmsSink
from config import PROJECT_ROOT, Settings
from models.db import Database, utcnow
from models.deadlines import CHINA_TZ
from models.invitation_sweep import INVITATION_ISSUER, INVITATION_KIND, QuietHours
from models.notifications import NoticeChannel, NoticeStatus, Notification
from models.rating_invitations import RatingInvitation
from models.rating_sweep_io import SweepActivity
from models.services import ServiceRecord
from runtime.mail_sink import MailSink, message_text
from runtime.rating_sweep import ensure_sweep_schedule, schedule_id
from runtime.seed import DemoCredentials
from tests.pii_scan import find_in_history
from tests.support.intake import count
from tests.support.services import running_worker
from tests.support.unrated import add_unrated, drain, sweep
from tests.support.waiting import eventually
from workflows.rating_sweep import RatingSweepWorkflow

PHONE = "13912345678"  # one applicant with many transactions (in tests/pii_watch.py's needles)
EMAIL = "zhang.sanfeng@example.com"


def quiet_free(settings: Settings) -> Settings:
    """The sweep at any hour: quiet hours are tested on their own, with a chosen clock."""
    return settings.model_copy(update={"rating_invitation_quiet_hours": ""})


def sender_of(settings: Settings, db: Database) -> NoticeSender:
    return NoticeSender(db, Mailer(settings), FileSmsSink(settings.sms_dir), settings)


def texts(settings: Settings) -> list[str]:
    return [path.read_text(encoding="utf-8") for path in sorted(settings.sms_dir.glob("*.txt"))]


async def due_and_not(db: Database) -> tuple[list[int], list[int], list[int]]:
    """12 records of one applicant by SMS and 2 by email, due an invitation; and 5 that must not get one."""
    now = utcnow()
    by_sms = await add_unrated(db, [f"INV-S{n:02d}" for n in range(12)], now - timedelta(days=2), phone=PHONE)
    by_mail = await add_unrated(db, ["INV-E01", "INV-E02"], now - timedelta(days=2), email=EMAIL)
    others = await add_unrated(db, ["INV-EARLY"], now - timedelta(hours=1), phone=PHONE)  # not a day yet
    others += await add_unrated(db, ["INV-LATE"], now - timedelta(days=30), phone=PHONE)  # window closed
    others += await add_unrated(db, ["INV-NONE"], now - timedelta(days=2))  # no contact given
    others += await add_unrated(db, ["INV-DONE", "INV-RATED"], now - timedelta(days=2), phone=PHONE)
    async with db.session() as session:
        done = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == "INV-DONE"))).one()
        done.invited_at = now - timedelta(hours=3)  # invited by an earlier sweep
        session.add(done)
        await session.commit()
    return by_sms, by_mail, others


async def test_the_sweep_invites_each_due_record_once_by_sms_or_email(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient, mailbox: MailSink
) -> None:
    settings = quiet_free(settings)
    by_sms, by_mail, _ = await due_and_not(db)
    rated = await offline_api.post(
        "/api/v1/ratings",
        json={"record_no": "INV-RATED", "level": "satisfied", "channel": "pc"},
        headers={"X-API-Key": demo.api_key},
    )
    assert rated.status_code == 201, rated.text
    activities = RatingSweepActivities(db, settings, asyncio.Event())
    batches = await sweep(activities, SweepActivity.INVITE, utcnow(), batch_size=5)
    assert sum(b.written for b in batches) == 14 and sum(b.sms for b in batches) == 12
    assert [b.scanned for b in batches] == [5, 5, 4]  # keyset pages of 5
    assert await drain(sender_of(settings, db), settings) == 14

    sms = texts(settings)
    assert len(sms) == 12  # one per record, though all go to the same phone
    assert all(text.startswith(f"To: {PHONE}\n") for text in sms)
    bodies = [text.split("\n\n", 1)[1] for text in sms]
    links = [re.search(r"/q/([A-Za-z0-9_-]{32})", body) for body in bodies]
    assert all(links) and len({link.group(1) for link in links if link}) == 12
    for body in bodies:  # the link and its deadline; nothing about the person or the transaction
        assert PHONE not in body and "INV-" not in body and "企业" not in body and "前有效" in body
    mails = mailbox.to(EMAIL)
    assert len(mails) == 2 and all("请评价" in str(m["Subject"]) for m in mails)
    assert all("/q/" in message_text(m) and "zhang" not in message_text(m) for m in mails)
    first = links[0]
    assert first is not None
    page = await offline_api.get(f"/q/{first.group(1)}")
    assert page.status_code == 200 and "办事评价" in page.text

    async with db.session() as session:
        invited = (await session.exec(select(ServiceRecord).where(col(ServiceRecord.invited_at).is_not(None)))).all()
        links_made = (
            await session.exec(select(RatingInvitation).where(RatingInvitation.issued_by == INVITATION_ISSUER))
        ).all()
        notices = (await session.exec(select(Notification))).all()
    assert {r.id for r in invited} == set(by_sms + by_mail) | {r.id for r in invited if r.record_no == "INV-DONE"}
    assert len(links_made) == 14 and all(i.token_sealed and i.used_at is None for i in links_made)
    assert all(i.expires_at > utcnow() for i in links_made)  # until the window closes
    assert {(n.kind, n.channel, n.status, n.recipient_ref) for n in notices} == {
        (INVITATION_KIND, NoticeChannel.SMS, NoticeStatus.SENT, "applicant"),
        (INVITATION_KIND, NoticeChannel.EMAIL, NoticeStatus.SENT, "applicant"),
    }
    assert all(n.case_id is None and n.record_id in by_sms + by_mail for n in notices)
    assert all(PHONE not in str(n.context) and EMAIL not in str(n.context) for n in notices)

    # Run again: nothing is due any more.
    again = await sweep(activities, SweepActivity.INVITE, utcnow(), batch_size=5)
    assert sum(b.written for b in again) == 0
    assert await drain(sender_of(settings, db), settings) == 0
    assert len(texts(settings)) == 12 and len(mailbox.to(EMAIL)) == 2
    assert await count(db, Notification) == 14 and await count(db, RatingInvitation) == 14 + 1  # + the demo's link


async def test_two_sweeps_at_once_invite_each_record_once(
    settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    settings = quiet_free(settings)
    records = await add_unrated(db, [f"INV-C{n:02d}" for n in range(30)], utcnow() - timedelta(days=2), phone=PHONE)
    now = utcnow()
    one, two = (
        RatingSweepActivities(db, settings, asyncio.Event()),
        RatingSweepActivities(db, settings, asyncio.Event()),
    )
    first, second = await asyncio.gather(
        sweep(one, SweepActivity.INVITE, now, batch_size=4), sweep(two, SweepActivity.INVITE, now, batch_size=4)
    )
    assert sum(b.written for b in first + second) == 30
    assert await drain(sender_of(settings, db), settings) == 30
    assert len(texts(settings)) == 30
    async with db.session() as session:
        notices = (await session.exec(select(Notification.record_id))).all()
    assert sorted(n for n in notices if n is not None) == sorted(records)


async def test_an_invitation_is_not_sent_once_the_record_is_rated(
    settings: Settings, db: Database, demo: DemoCredentials, offline_api: httpx.AsyncClient
) -> None:
    settings = quiet_free(settings)
    await add_unrated(db, ["INV-R01"], utcnow() - timedelta(days=2), phone=PHONE)
    await sweep(RatingSweepActivities(db, settings, asyncio.Event()), SweepActivity.INVITE, utcnow(), batch_size=10)
    rated = await offline_api.post(
        "/api/v1/ratings",
        json={"record_no": "INV-R01", "level": "satisfied", "channel": "pc"},
        headers={"X-API-Key": demo.api_key},
    )
    assert rated.status_code == 201  # the rater came first (another channel) while the SMS gateway was slow
    await drain(sender_of(settings, db), settings)
    async with db.session() as session:
        notice = (await session.exec(select(Notification))).one()
    assert notice.status == NoticeStatus.FAILED and "已评价" in notice.last_error
    assert texts(settings) == []


def test_quiet_hours_hold_an_invitation_until_morning() -> None:
    quiet = QuietHours.parse("21:00-08:00")
    assert quiet is not None and QuietHours.parse("  ") is None

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=CHINA_TZ)

    assert quiet.held_until(at(23, 21)) == at(24, 8)
    assert quiet.held_until(at(23, 23, 59)) == at(24, 8)
    assert quiet.held_until(at(24, 7, 59)) == at(24, 8)
    assert quiet.held_until(at(24, 8)) is None and quiet.held_until(at(24, 20, 59)) is None
    noon = QuietHours.parse("12:00-13:30")
    assert (
        noon is not None and noon.held_until(at(24, 12, 10)) == at(24, 13, 30) and noon.held_until(at(24, 14)) is None
    )


async def test_an_invitation_queued_at_night_waits_for_the_morning(
    settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    today = utcnow().astimezone(CHINA_TZ).date()
    night = datetime.combine(today - timedelta(days=1), time(23, 0), CHINA_TZ)  # a sweep at 23:00 last night
    await add_unrated(db, ["INV-N01"], night - timedelta(days=2), phone=PHONE)
    activities = RatingSweepActivities(db, settings, asyncio.Event())  # the default quiet hours, 21:00–08:00
    await sweep(activities, SweepActivity.INVITE, night, batch_size=10)
    async with db.session() as session:
        notice = (await session.exec(select(Notification))).one()
    assert notice.next_attempt_at == datetime.combine(today, time(8, 0), CHINA_TZ)
    assert notice.status == NoticeStatus.PENDING and notice.attempts == 0  # held: the case pages show it so


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_the_schedule_starts_the_sweep_workflow_and_its_history_holds_no_contact(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    settings = quiet_free(settings)
    await add_unrated(db, [f"INV-W{n:02d}" for n in range(3)], utcnow() - timedelta(days=2), phone=PHONE)
    await add_unrated(db, ["INV-WE1"], utcnow() - timedelta(days=2), email=EMAIL)
    client = dev_server.client
    async with running_worker(client, settings, db):
        handle, done = await ensure_sweep_schedule(client, settings)
        try:
            assert done == "created" and handle.id == schedule_id(settings)
            assert (await ensure_sweep_schedule(client, settings))[1] == "updated"  # idempotent at each start
            described = await handle.describe()
            assert described.schedule.spec.intervals[0].every == timedelta(
                seconds=settings.rating_sweep_interval_seconds
            )
            assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
            await handle.pause(note="维护")  # an operator paused it: a worker's start leaves it paused
            await ensure_sweep_schedule(client, settings)
            assert (await handle.describe()).schedule.state.paused
            await handle.unpause()
            await handle.trigger()

            async def started() -> str | None:
                actions = (await handle.describe()).info.recent_actions
                return actions[0].action.workflow_id if actions else None  # type: ignore[attr-defined]

            workflow_id = await eventually(started, timeout=30)
            run = client.get_workflow_handle_for(RatingSweepWorkflow.run, workflow_id)
            report = await asyncio.wait_for(run.result(), timeout=60)
            assert (report.invitations, report.sms, report.email, report.default_ratings) == (4, 3, 1, 0)
            assert await eventually(lambda: _sent(db, 4), timeout=30)
            history = await run.fetch_history()
            assert find_in_history(history, [PHONE, EMAIL]) == []
            # The control: the contact is really there to be found, in the SMS the gateway was given.
            assert any(PHONE in text for text in texts(settings))
        finally:
            await handle.delete()


async def _sent(db: Database, expected: int) -> bool:
    async with db.session() as session:
        rows = (await session.exec(select(Notification.status))).all()
    return len(rows) == expected and all(status == NoticeStatus.SENT for status in rows)


async def _start_worker(
    dev_server: WorkflowEnvironment, settings: Settings, crash_at: str | None
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "HCP_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "HCP_DATABASE_URL": settings.sqlalchemy_url,
        "HCP_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "HCP_WORKFLOW_ID_PREFIX": settings.workflow_id_prefix,
        "HCP_PII_KEYS": settings.pii_keys,
        "HCP_DATA_DIR": str(settings.data_dir),
        "HCP_SMTP_PORT": str(settings.smtp_port),
        "HCP_NOTICE_RELAY_INTERVAL_SECONDS": "0.2",
        "HCP_RATING_SWEEP_INTERVAL_SECONDS": "3600",  # runs only when the test triggers one
        "HCP_RATING_SWEEP_BATCH_SIZE": "4",
        "HCP_RATING_INVITATION_QUIET_HOURS": "",
    }
    env.pop("HCP_CRASH_POINT", None)
    if crash_at:
        env["HCP_CRASH_POINT"] = crash_at
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=PROJECT_ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    seen = b""
    while b"worker polling" not in seen:
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=60)
        assert line, f"worker exited early: {seen.decode()}"
        seen += line
    return proc


async def _stop(worker: asyncio.subprocess.Process) -> bytes:
    if worker.returncode is None:
        worker.send_signal(signal.SIGTERM)
    assert worker.stderr is not None
    output = await asyncio.wait_for(worker.stderr.read(), timeout=60)
    await worker.wait()
    return output


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("crash_at", ["rating_sweep.invite.before_commit", "rating_sweep.invite.after_commit"])
async def test_a_worker_killed_in_a_batch_still_invites_each_record_once(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials, crash_at: str
) -> None:
    records = await add_unrated(db, [f"INV-K{n:02d}" for n in range(10)], utcnow() - timedelta(days=2), phone=PHONE)
    worker = await _start_worker(dev_server, settings, crash_at)
    handle = dev_server.client.get_schedule_handle(schedule_id(settings))
    output = b""
    try:
        await handle.trigger()
        assert await asyncio.wait_for(worker.wait(), timeout=60) == -signal.SIGKILL  # died in its first batch
        output += await _stop(worker)
        worker = await _start_worker(dev_server, settings, None)
        # The killed run's batch waits for its timeout; a new run (allowed beside it) goes on at once.
        await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        assert await eventually(lambda: _sent(db, 10), timeout=60)
        assert len(texts(settings)) == 10
        async with db.session() as session:
            invited = await session.exec(select(ServiceRecord.id).where(col(ServiceRecord.invited_at).is_not(None)))
            assert sorted(i for i in invited.all() if i is not None) == sorted(records)
            made = await session.exec(
                select(RatingInvitation.id).where(RatingInvitation.issued_by == INVITATION_ISSUER)
            )
            assert len(made.all()) == 10
        assert await count(db, Notification) == 10
    finally:
        output += await _stop(worker)
        await handle.delete()
    assert PHONE not in output.decode()
