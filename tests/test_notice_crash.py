"""The worker killed (SIGKILL) before a send, after it, and after its record: one email, one SMS, one live link.

Runs worker.py as a real process with a named crash point (activities/faults.py), drives a case to
the rater's feedback through the API, lets the worker die in the middle of sending, starts it again
and counts what the rater received.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter

import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from activities.faults import CRASH_POINT_ENV
from config import PROJECT_ROOT, Settings
from models.db import Database
from models.notifications import NoticeStatus, Notification
from models.rater_links import RaterLink
from runtime.mail_sink import MailSink, message_text
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import RATER, login
from tests.support.http_case import TO_FEEDBACK, open_case, take_steps
from tests.support.services import api_client
from tests.support.waiting import eventually

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


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
        "HCP_NOTICE_LEASE_SECONDS": "2",
        "HCP_NOTICE_RELAY_INTERVAL_SECONDS": "0.2",
        # One send at a time, so the kill lands exactly at the crash point and no other send is half done.
        "HCP_NOTICE_RELAY_CONCURRENCY": "1",
    }
    env.pop(CRASH_POINT_ENV, None)
    if crash_at:
        env[CRASH_POINT_ENV] = crash_at
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


async def _feedback_notices(db: Database) -> list[Notification]:
    async with db.session() as session:
        rows = await session.exec(select(Notification).where(Notification.kind == "feedback"))
        return list(rows.all())


@pytest.mark.parametrize("crash_at", ["notice.before_send", "notice.after_send", "notice.after_record"])
async def test_worker_killed_around_the_rater_feedback(
    dev_server: WorkflowEnvironment,
    settings: Settings,
    db: Database,
    demo: DemoCredentials,
    mailbox: MailSink,
    crash_at: str,
) -> None:
    temporal = TemporalConnection(settings, client=dev_server.client)
    worker = await _start_worker(dev_server, settings, crash_at)
    output = b""
    try:
        async with api_client(settings, db, temporal) as api:
            staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
            case_id = await open_case(api, demo, staff, timeout=30)
            await take_steps(api, case_id, staff, TO_FEEDBACK)

            # The worker dies at the crash point while sending the feedback.
            assert await asyncio.wait_for(worker.wait(), timeout=60) == -signal.SIGKILL
            assert worker.stderr is not None
            output += await worker.stderr.read()
            worker = await _start_worker(dev_server, settings, None)

            async def all_sent() -> list[Notification] | None:
                rows = await _feedback_notices(db)
                return rows if len(rows) == 2 and all(n.status == NoticeStatus.SENT for n in rows) else None

            rows = await eventually(all_sent, timeout=60)

            # One email: every delivery of it is the same message (same Message-ID, same link) ...
            mails = mailbox.to(RATER["email"])
            assert len({str(m["Message-ID"]) for m in mails}) == 1
            assert len({message_text(m) for m in mails}) == 1
            if crash_at != "notice.after_send":
                # ... and only a crash between the send and its record can make the server see it twice.
                assert len(mails) == 1
            # One SMS, and one link: the same in both, and it works.
            texts = [p.read_text(encoding="utf-8") for p in settings.sms_dir.glob("*.txt")]
            assert len(texts) == 1
            email_link = re.search(r"/r/([A-Za-z0-9_-]+)", message_text(mails[0]))
            sms_link = re.search(r"/r/([A-Za-z0-9_-]+)", texts[0])
            assert email_link and sms_link and email_link.group(1) == sms_link.group(1)
            async with db.session() as session:
                assert len((await session.exec(select(RaterLink))).all()) == 1
            page = await api.get(f"/r/{email_link.group(1)}")
            assert page.status_code == 200 and "办理结果确认" in page.text
            assert sum(n.attempts for n in rows) >= (3 if crash_at != "notice.after_record" else 2)
            assert Counter(n.channel.value for n in rows) == {"email": 1, "sms": 1}
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
            assert worker.stderr is not None
            output += await asyncio.wait_for(worker.stderr.read(), timeout=60)
            await worker.wait()
    log = output.decode()
    for pii in (RATER["email"], RATER["phone"], RATER["name"]):
        assert pii not in log
