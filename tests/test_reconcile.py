"""Reconciliation after a restore (runtime/reconcile.py), on the Temporal dev server and PostgreSQL.

A backup is a real `pg_dump` of the test database, restored with `pg_restore` over the emptied
tables (sequences included) while the worker is stopped, as an operator would.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from sqlmodel import col, func, select
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities import build_activities
from config import Settings
from models.audit import AuditEvent
from models.case.records import Case
from models.case.step_inputs import AcceptInput, RectificationInput, RemindInput
from models.case.vocabulary import Stage
from models.db import Database, utcnow
from models.notifications import NoticeStatus, Notification
from runtime.mail_sink import MailSink
from runtime.notice_relay import NoticeRelay
from runtime.reconcile import Reconciler, Report
from runtime.reconcile_repairs import differences, settle_held
from runtime.reconcile_temporal import key_seq, run_facts
from runtime.seed import DemoCredentials
from runtime.temporal import ensure_search_attributes
from tests.support.case_driver import SCJ_STAFF, SUPERVISOR, CaseDriver, through_verification
from tests.support.db import case_row, truncate_postgres
from tests.support.services import running_worker
from tests.support.waiting import eventually
from worker import build_worker
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def take_backup(settings: Settings, path: Path) -> None:
    """pg_dump of every row and sequence (the schema stays: a restore goes over the migrated tables)."""
    subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "--exclude-table-data=alembic_version",
            "-Fc",
            "-f",
            str(path),
            _libpq(settings.database_url),
        ],
        check=True,
    )


def restore_backup(settings: Settings, path: Path) -> None:
    truncate_postgres(settings.database_url)
    subprocess.run(
        [
            "pg_restore",
            "--data-only",
            "--disable-triggers",
            "--single-transaction",
            "-d",
            _libpq(settings.database_url),
            str(path),
        ],
        check=True,
    )


async def reconcile(
    env: WorkflowEnvironment, db: Database, settings: Settings, dry_run: bool = False, **options: Any
) -> Report:
    """One run of the command's reconciler; its progress lines and table go to the test's output."""
    out = io.StringIO()
    report = await Reconciler(db, env.client, settings, dry_run=dry_run, out=out).run(**options)
    print(out.getvalue(), report.table())
    return report


async def audit_count(db: Database, action: str) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).where(AuditEvent.action == action))).one()


async def assert_row_is_workflow(case: CaseDriver) -> None:
    assert differences(await case_row(case.db, case.case_id), await case.state()) == {}


async def test_database_restored_older_than_the_workflows(
    dev_server: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    tmp_path: Path,
) -> None:
    env, backup = dev_server, tmp_path / "hcp.dump"
    async with running_worker(env.client, settings, db):
        moved = await CaseDriver.open(env, offline_api, demo, db, settings, record_no="DEMO-0001")
        still = await CaseDriver.open(env, offline_api, demo, db, settings, record_no="DEMO-0002")
        await moved.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
        assert await eventually(still.actions) == ["opened"]  # written before the backup
        take_backup(settings, backup)
        # After the backup: the case moves on to rectification and a new bad rating comes in.
        await through_verification(moved, accepted=True)
        lost = await CaseDriver.open(env, offline_api, demo, db, settings, record_no="DEMO-0003")
        written_after = [e.event_key for e in await moved.events()][2:]
        assert len(written_after) == 2 and (await moved.state()).stage == Stage.RECTIFICATION
    restore_backup(settings, backup)
    assert (await case_row(db, moved.case_id)).stage == Stage.VERIFICATION
    async with db.session() as session:
        assert await session.get(Case, lost.case_id) is None

    async with running_worker(env.client, settings, db):
        report = await reconcile(env, db, settings)
        assert report.counts() == {"row_behind_workflow": 1, "workflow_without_case": 1, "ids_advanced": 1}
        assert all(f.repaired for f in report.findings)
        # The row is the workflow's state again; one reconciled event lists the lost events by key only.
        await assert_row_is_workflow(moved)
        await assert_row_is_workflow(still)
        events = await moved.events()
        assert [e.action for e in events] == ["opened", "accepted", "reconciled"]
        # By key where the history has it (queued activities), else by number (local activities).
        assert [key_seq(k) for k in events[-1].data["lost_events"]] == [key_seq(k) for k in written_after]
        assert events[-1].data["changed"]["stage"] == ["verification", "rectification"]
        assert await audit_count(db, "case.reconciled") == 1
        # The rating lost with the backup: its workflow is terminated and audited, no reminder will fire.
        facts = await run_facts(env.client, lost.handle.id)
        assert facts is not None and facts.status == WorkflowExecutionStatus.TERMINATED
        assert await audit_count(db, "case.workflow_terminated") == 1

        again = await reconcile(env, db, settings)
        assert again.findings == [] and again.checked == 2
        assert len(await moved.events()) == 3 and await audit_count(db, "case.reconciled") == 1

        # The repaired case goes on: its next step lands on the row; a new rating never reuses the lost id.
        await moved.do(CaseWorkflow.rectify, RectificationInput(actor=SCJ_STAFF, measures="增开窗口"))
        await eventually(lambda: _row_stage_is(db, moved.case_id, Stage.FEEDBACK))
        fresh = await CaseDriver.open(env, offline_api, demo, db, settings, record_no="DEMO-0004")
        assert fresh.case_id > lost.case_id and fresh.handle.id != lost.handle.id


async def test_workflows_missing_are_started_again_from_the_outbox(
    dev_server: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
) -> None:
    async with running_worker(dev_server.client, settings, db):
        accepted = await CaseDriver.open(dev_server, offline_api, demo, db, settings, record_no="DEMO-0005")
        untouched = await CaseDriver.open(dev_server, offline_api, demo, db, settings, record_no="DEMO-0006")
        await accepted.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    # Temporal's namespace is lost: the same database against an empty namespace.
    client = await _empty_namespace(dev_server)
    env = WorkflowEnvironment.from_client(client)
    for case in (accepted, untouched):
        case.handle = client.get_workflow_handle_for(CaseWorkflow.run, case.handle.id)
    async with running_worker(client, settings, db):
        dry = await reconcile(env, db, settings, dry_run=True)
        assert dry.counts() == {"workflow_missing": 2} and not any(f.repaired for f in dry.findings)
        assert await run_facts(client, accepted.handle.id) is None
        assert [e.action for e in await untouched.events()] == ["opened"]

        report = await reconcile(env, db, settings)
        assert report.counts() == {"workflow_missing": 2}
        assert all(f.repaired for f in report.findings)
        # The accepted case starts its round again at its unit, numbering on; the other one from the outbox.
        assert [e.action for e in await accepted.events()] == [
            "opened",
            "accepted",
            "reopened",
            "reconciled",
        ]
        assert [e.action for e in await untouched.events()] == ["opened", "reconciled"]
        for case in (accepted, untouched):
            await assert_row_is_workflow(case)
            assert (await case.state()).stage == Stage.ASSIGNED
        assert await audit_count(db, "case.reconciled") == 2

        again = await reconcile(env, db, settings)
        assert again.findings == []
        # The unit accepts again: written once, audited once more.
        await accepted.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
        await eventually(lambda: _row_stage_is(db, accepted.case_id, Stage.VERIFICATION))
        assert await audit_count(db, "case.accepted") == 2


async def test_notices_waiting_at_the_backup_are_held_not_sent_twice(
    dev_server: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    mailbox: MailSink,
    tmp_path: Path,
) -> None:
    env, backup = dev_server, tmp_path / "hcp.dump"
    activities = build_activities(settings, db)
    relay = NoticeRelay(activities.sender, settings, asyncio.Event())
    async with _worker_without_relay(env, settings, db):
        first = await CaseDriver.open(env, offline_api, demo, db, settings, record_no="DEMO-0001")
        second = await CaseDriver.open(env, offline_api, demo, db, settings, record_no="DEMO-0002")
        for case in (first, second):
            await case.do(CaseWorkflow.remind, RemindInput(actor=SUPERVISOR, message="请尽快办理"))
        waiting = await _notices(db, NoticeStatus.PENDING)
        assert waiting and {n.case_id for n in waiting} == {first.case_id, second.case_id}
        take_backup(settings, backup)
        backup_moment = utcnow()
        await relay.drain_once()
        assert len(mailbox.messages) == len(waiting)
        restore_backup(settings, backup)
        assert len(await _notices(db, NoticeStatus.PENDING)) == len(waiting)

        report = await reconcile(env, db, settings, restored_at=backup_moment)
        assert report.counts() == {"notices_held": 1}
        assert len(await _notices(db, NoticeStatus.HELD)) == len(waiting)
        await relay.drain_once()
        assert len(mailbox.messages) == len(waiting)  # held: nothing sent a second time

        # The mail server's log shows the first case's notices went out: those are marked sent, never resent.
        confirmed = {m["Message-ID"] for m in mailbox.messages if _case_of(m, waiting) == first.case_id}
        assert await settle_held(db, confirmed) == len(confirmed)
        assert await audit_count(db, "notice.released") == 1
        # The rest are released and go out again under the same Message-ID (the at-least-once case).
        rest = len(waiting) - len(confirmed)
        assert await settle_held(db, None) == rest
        await relay.drain_once()
        assert len(mailbox.messages) == len(waiting) + rest
        assert len(await _notices(db, NoticeStatus.SENT)) == len(waiting)
        assert (await reconcile(env, db, settings, restored_at=backup_moment)).findings == []
        assert await audit_count(db, "notice.held_after_restore") == 1


def _case_of(message: object, notices: list[Notification]) -> int | None:
    ids = {n.message_id: n.case_id for n in notices}
    return ids.get(message["Message-ID"])  # type: ignore[index]


async def _notices(db: Database, status: NoticeStatus) -> list[Notification]:
    async with db.session() as session:
        return list(
            (
                await session.exec(
                    select(Notification).where(Notification.status == status).order_by(col(Notification.id))
                )
            ).all()
        )


@asynccontextmanager
async def _worker_without_relay(env: WorkflowEnvironment, settings: Settings, db: Database) -> AsyncIterator[None]:
    """The production worker with no notice relay: notices stay pending until the test sends them."""
    async with build_worker(env.client, settings, build_activities(settings, db)):
        yield


async def _empty_namespace(env: WorkflowEnvironment) -> Client:
    """A client of a fresh namespace on the dev server, with the case search attributes."""
    name = f"lost-{uuid.uuid4().hex[:8]}"
    await env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86400))
    )
    config = env.client.config()
    client = await Client.connect(
        config["service_client"].config.target_host, namespace=name, data_converter=pydantic_data_converter
    )

    async def ready() -> bool:
        try:
            await ensure_search_attributes(client)
            return not [_ async for _ in client.list_workflows()]
        except RPCError:
            return False

    assert await eventually(ready, timeout=60, interval=1)
    return client


async def _row_stage_is(db: Database, case_id: int, stage: Stage) -> bool:
    return (await case_row(db, case_id)).stage == stage
