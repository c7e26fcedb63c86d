"""SIGTERM to the worker and the API in the middle of a case step: nothing half done, nothing done twice.

Real processes (worker.py and uvicorn) on the Temporal dev server and PostgreSQL. The unit's clerk
sends 反馈评价人 to the API process; the step's record activity (timeline event, notices, audit row:
one transaction) is held mid-transaction by a row lock the test takes on the case, so that at the
moment both processes get SIGTERM a request is in flight and an activity is running. Then:

- the worker stops polling at once (its /readyz says draining) but stays until the activity
  finishes once the lock goes, and exits 0 (the record is a local activity inside the workflow
  task: the worker lets it finish even with a grace of 0, as a run with one showed);
- the API answers the in-flight request (200, or 202 as the workflow finishes the step on the next
  worker) before it exits; the connection is not reset;
- the step's timeline event, audit row and notices exist exactly once; a new worker sends the
  notices and the case goes on to its end, every email notice received exactly once.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, func, select
from sqlmodel.sql.expression import SelectOfScalar
from temporalio.testing import WorkflowEnvironment

from config import PROJECT_ROOT, Settings
from models.audit import AuditEvent
from models.case.records import CaseEvent
from models.case.vocabulary import TERMINAL_STAGES
from models.db import Database
from models.notifications import NoticeChannel, NoticeStatus, Notification
from runtime.mail_sink import MailSink, message_text
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.db import case_row
from tests.support.http import RATER, answer_link, login
from tests.support.http_case import VERIFIED, open_case, take_steps
from tests.support.services import api_client
from tests.support.settings import free_port
from tests.support.waiting import delivered, eventually

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

GRACE_SECONDS = 10.0
# How long the activity stays stuck after SIGTERM: inside the grace, and short enough that the step is
# still answered within the API's wait for it (HCP_CASE_ACTION_WAIT_SECONDS).
HELD_AFTER_SIGTERM = 1.5


class Child:
    """A process started here, its output in a file, stopped by its PID."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc, self.log = proc, log

    @classmethod
    async def start(cls, args: list[str], env: dict[str, str], log: Path) -> Child:
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(*args, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out)
        return cls(proc, log)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def _env(settings: Settings, dev_server: WorkflowEnvironment, **extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("HCP_")}
    return {
        **inherited,
        "HCP_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "HCP_DATABASE_URL": settings.sqlalchemy_url,
        "HCP_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "HCP_WORKFLOW_ID_PREFIX": settings.workflow_id_prefix,
        "HCP_PII_KEYS": settings.pii_keys,
        "HCP_SECRET_KEY": settings.secret_key,
        "HCP_DATA_DIR": str(settings.data_dir),
        "HCP_SMTP_PORT": str(settings.smtp_port),
        "HCP_NOTICE_RELAY_INTERVAL_SECONDS": "0.2",
        "HCP_WORKER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


async def _answering(url: str, ready: int = 200) -> bool:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(url)).status_code == ready
    except httpx.TransportError:
        return False


async def _case_updates_waiting(conn: AsyncConnection) -> int:
    """Sessions of this database whose UPDATE of a case row waits for a lock (the record activity's)."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE \"case\"%'"
    )
    async with conn.engine.connect() as probe:
        return int((await probe.execute(query)).scalar_one())


async def _count(db: Database, statement: SelectOfScalar[int]) -> int:
    async with db.session() as session:
        return int((await session.exec(statement)).one())


async def test_sigterm_mid_step_finishes_the_request_and_the_activity(
    dev_server: WorkflowEnvironment,
    settings: Settings,
    db: Database,
    demo: DemoCredentials,
    mailbox: MailSink,
    locker: AsyncConnection,
    tmp_path: Path,
) -> None:
    probe_port, api_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    worker = await Child.start(
        [sys.executable, "worker.py"],
        _env(settings, dev_server, HCP_WORKER_HEALTH_PORT=str(probe_port)),
        tmp_path / "worker-1.log",
    )
    api = await Child.start(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(api_port)],
        _env(settings, dev_server),
        tmp_path / "api.log",
    )
    next_worker: Child | None = None
    try:
        await eventually(lambda: _answering(f"http://127.0.0.1:{probe_port}/readyz"), timeout=60, interval=0.3)
        await eventually(lambda: _answering(f"{api_url}/readyz"), timeout=60, interval=0.3)
        async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
            staff = await login(http, "scj_staff", demo.passwords["scj_staff"])
            case_id = await open_case(http, demo, staff, timeout=30)
            await take_steps(http, case_id, staff, (*VERIFIED, ("rectification", {"measures": "增开窗口"})))

            # The case row locked: the step's record activity will stop inside its transaction.
            await locker.execute(sa.text('SELECT id FROM "case" WHERE id = :id FOR NO KEY UPDATE'), {"id": case_id})
            in_flight = asyncio.create_task(
                http.post(f"/api/v1/cases/{case_id}/feedback", json={"message": "我局已增开窗口"}, headers=staff)
            )

            async def activity_stuck() -> bool:
                return await _case_updates_waiting(locker) > 0

            await eventually(activity_stuck, timeout=5, interval=0.05)
            assert not in_flight.done()

            worker.proc.send_signal(signal.SIGTERM)
            api.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(HELD_AFTER_SIGTERM)
            draining = httpx.get(f"http://127.0.0.1:{probe_port}/readyz", timeout=5)
            assert draining.status_code == 503 and draining.json()["checks"]["worker"] == "draining"
            # Both wait: the worker for its running activity, the API for its request.
            assert worker.proc.returncode is None, worker.output
            assert api.proc.returncode is None and not in_flight.done(), api.output

            await locker.rollback()
            assert await asyncio.wait_for(worker.proc.wait(), timeout=GRACE_SECONDS) == 0, worker.output
            answer = await asyncio.wait_for(in_flight, timeout=30)  # a reset connection would raise here
            assert answer.status_code in (200, 202), answer.text
            # uvicorn re-raises the SIGTERM it handled once it has shut down in order.
            assert await asyncio.wait_for(api.proc.wait(), timeout=30) in (0, -signal.SIGTERM), api.output
        assert "worker draining" in worker.output and "worker stopped" in worker.output, worker.output
        assert "did not finish" not in worker.output and "CancelledError" not in worker.output, worker.output
        assert "Waiting for application shutdown" in api.output, api.output

        # Exactly once each: the step's event, its audit row, its notices (not sent yet: the stopping
        # worker claims nothing more).
        assert await _count(db, _events(case_id, "feedback_written")) == 1
        assert await _count(db, _audits(case_id, "case.feedback")) == 1
        feedback = await _notices(db, "feedback")
        assert Counter(n.channel for n in feedback) == {NoticeChannel.EMAIL: 1, NoticeChannel.SMS: 1}
        assert all(n.status == NoticeStatus.PENDING and n.attempts == 0 for n in feedback)

        # A new worker takes over: the notices go out, the rater answers, the case ends.
        next_worker = await Child.start([sys.executable, "worker.py"], _env(settings, dev_server), tmp_path / "w2.log")
        (mail,) = await delivered(mailbox, RATER["email"], timeout=60)
        token = re.search(r"/r/([A-Za-z0-9_-]+)", message_text(mail))
        assert token is not None
        async with api_client(settings, db, TemporalConnection(settings, client=dev_server.client)) as local:
            answered = await answer_link(local, token.group(1), satisfied=True)
            assert answered.status_code == 200, answered.text

        async def ended() -> bool:
            return (await case_row(db, case_id)).stage in TERMINAL_STAGES

        await eventually(ended, timeout=30)

        async def all_sent() -> list[Notification] | None:
            rows = await _notices(db)
            return rows if all(n.status == NoticeStatus.SENT for n in rows) else None

        notices = await eventually(all_sent, timeout=60)
        await asyncio.sleep(1)  # anything sent twice would arrive by now
        emailed = [n.message_id for n in notices if n.channel == NoticeChannel.EMAIL]
        received = Counter(str(m["Message-ID"]) for m in mailbox.messages)
        assert received == Counter(emailed), (received, emailed)
        assert await _count(db, _events(case_id, "feedback_written")) == 1
        assert await _count(db, _audits(case_id, "case.feedback")) == 1
    finally:
        for child in (worker, api, next_worker):
            if child is not None:
                await child.stop()
    for child in (worker, api):
        for pii in (RATER["email"], RATER["phone"], RATER["name"]):
            assert pii not in child.output


def _events(case_id: int, action: str) -> SelectOfScalar[int]:
    return select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == action)


def _audits(case_id: int, action: str) -> SelectOfScalar[int]:
    return (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.target_type == "case", AuditEvent.target_id == str(case_id), AuditEvent.action == action)
    )


async def _notices(db: Database, kind: str | None = None) -> list[Notification]:
    async with db.session() as session:
        query = select(Notification).order_by(col(Notification.id))
        if kind is not None:
            query = query.where(Notification.kind == kind)
        return list((await session.exec(query)).all())
