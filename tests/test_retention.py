"""The retention job (docs/retention.md): raters in every state, what goes, what stays, counted, twice, failing.

On both databases: a run at `now` anonymises exactly the due raters — their contact, the hashes that
find them, their words in every text — and leaves open, appealed, recently closed and recent ones
whole; the figures (every count of every grouping) are the same before and after, and on PostgreSQL
the rollup rebuilt after the run equals the one before row for row; one audit row per batch, none on
a second run, which changes nothing; a batch failing in the middle leaves no rating half done. On the
Temporal dev server the Schedule starts the workflow, whose history holds no rater's data.
"""

from __future__ import annotations

import asyncio
import io
import math
from datetime import date, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlmodel import col, select
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.audit import AuditEvent
from models.case.records import CaseEvent
from models.case.requests import CaseStepRequest
from models.db import Database, utcnow
from models.indicators.compute import count_groups
from models.indicators.definitions import Dimension
from models.indicators.filters import IndicatorFilter
from models.indicators.periods import Period
from models.notifications import Notification
from models.pii import configure_pii_keys
from models.rater_links import RaterLink
from models.ratings import Rating
from models.retention import Periods, count_due
from models.services import ServiceRecord
from models.suspicion.records import RatingFingerprint, SuspicionFlag
from runtime.refresh_indicators import refresh_once
from runtime.retention import ensure_retention_schedule, run_now, schedule_id
from runtime.seed import DemoCredentials
from tests.pii_scan import find_in_history
from tests.support.indicator_rollup import comparable, rollup_rows
from tests.support.retention_data import Dataset, Rater, build
from tests.support.services import running_worker
from tests.support.waiting import eventually
from workflows.retention import RetentionWorkflow

BATCH = 4
DIMENSIONS = [Dimension.NONE, Dimension.UNIT, Dimension.CHANNEL, Dimension.DAY, Dimension.MONTH, Dimension.ITEM]
# Every table a run may write, and how to read it in a fixed order.
TABLES = ["rating", "ratingfingerprint", "caseevent", "notification", "raterlink", "casesteprequest",
          "servicerecord", "suspicionflag", "ratinginvitation", "auditevent"]  # fmt: skip


def batched(settings: Settings) -> Settings:
    return settings.model_copy(update={"retention_batch_size": BATCH})


async def figures(db: Database) -> dict[str, Any]:
    """Every count of every grouping over the whole span of the data (five years to now)."""
    period = Period(date.today() - timedelta(days=5 * 366), date.today())
    found = {}
    async with db.session() as session:
        for dimension in DIMENSIONS:
            found[dimension.value] = comparable(await count_groups(session, IndicatorFilter(period=period), dimension))
    return found


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    async with db.engine.connect() as conn:
        return {
            t: [tuple(row) for row in (await conn.execute(text(f'SELECT * FROM "{t}" ORDER BY 1, 2')))] for t in TABLES
        }


async def assert_anonymised(db: Database, rater: Rater, record_erased: bool = True) -> None:
    async with db.session() as session:
        rating = await session.get(Rating, rater.rating_id)
        assert rating is not None and rating.anonymised_at is not None
        assert (rating.rater_name, rating.rater_phone, rating.rater_email) == (None, None, None)
        assert rating.real_name and rating.level and rating.is_bad == (rater.case_id is not None)  # statistics stay
        assert rater.name not in rating.comment and rater.phone not in rating.comment and "跑了三趟" in rating.comment
        assert rater.name not in str(rating.answers) and rater.email not in str(rating.answers)
        assert rating.answers["服务效率"] == 2 and rating.answers["测评内容"] == ["5/01"]
        fingerprint = await session.get(RatingFingerprint, rater.rating_id)
        assert fingerprint is not None
        assert (fingerprint.phone_key, fingerprint.client_key, fingerprint.content_key) == (None, None, None)
        record = await session.get(ServiceRecord, rater.record_id)
        assert record is not None
        erased = (record.applicant_phone, record.applicant_email, record.applicant_phone_check) == (None, None, None)
        assert erased == record_erased
        if rater.case_id is None:
            return
        texts = await _case_texts(session, rater.case_id)
        for needle in (rater.name, rater.phone, "370602198001011234", "幸福路12号", "10.20.30.40"):
            assert needle not in texts, needle
        assert "已增开窗口" in texts and "10.9.9.9" in texts  # the rest of the text, and staff's own address
        events = (await session.exec(select(CaseEvent).where(CaseEvent.case_id == rater.case_id))).all()
        assert {e.action: e.data.get("rung") for e in events}["overdue"] == 1  # what the figures read stays
        link = (await session.exec(select(RaterLink).where(RaterLink.case_id == rater.case_id))).one()
        assert link.token_sealed is None and link.answer_satisfied is True


async def assert_whole(db: Database, rater: Rater) -> None:
    async with db.session() as session:
        rating = await session.get(Rating, rater.rating_id)
        assert rating is not None and rating.anonymised_at is None
        assert (rating.rater_name, rating.rater_phone, rating.rater_email) == (rater.name, rater.phone, rater.email)
        assert rater.phone in rating.comment
        fingerprint = await session.get(RatingFingerprint, rater.rating_id)
        assert fingerprint is not None and fingerprint.phone_key is not None and fingerprint.client_key is not None
        if rater.case_id is not None:
            texts = await _case_texts(session, rater.case_id)
            assert rater.name in texts and rater.phone in texts and "10.20.30.40" in texts
            sealed = select(col(RaterLink.token_sealed).is_not(None)).where(RaterLink.case_id == rater.case_id)
            assert (await session.exec(sealed)).one()  # read as a flag: one test seals it under a foreign key


async def _case_texts(session: Any, case_id: int) -> str:
    events = (await session.exec(select(CaseEvent.data).where(CaseEvent.case_id == case_id))).all()
    notices = (await session.exec(select(Notification.context).where(Notification.case_id == case_id))).all()
    link = (await session.exec(select(RaterLink.answer_comment).where(RaterLink.case_id == case_id))).all()
    clients = (await session.exec(select(CaseStepRequest.client).where(CaseStepRequest.case_id == case_id))).all()
    return repr([events, notices, link, clients])


async def audit_rows(db: Database, action: str = "retention.anonymise") -> list[AuditEvent]:
    async with db.session() as session:
        return list((await session.exec(select(AuditEvent).where(AuditEvent.action == action))).all())


async def test_a_run_anonymises_exactly_the_due_raters_and_leaves_the_figures_as_they_were(
    settings: Settings, db: Database, demo: DemoCredentials, backend: str
) -> None:
    settings, now = batched(settings), utcnow()
    data: Dataset = await build(db, settings, now)
    due = [r for r in data.raters if r.due]
    kept = [r for r in data.raters if not r.due]
    assert len(due) == 12 and len(kept) == 24
    before = await figures(db)
    if backend == "postgresql":
        await refresh_once(db, full=True)
        rollup_before = await rollup_rows(db)

    async with db.session() as session:
        counted = await count_due(session, now, Periods.of(settings))  # --dry-run
    assert (counted.ratings, counted.records) == (12, 12)
    printed = io.StringIO()
    report = await run_now(db, settings, now, printed)

    assert (report.ratings, report.cases, report.records) == (12, 9, 12)
    assert printed.getvalue().count("ratings: batch of") == 3
    for rater in due:
        await assert_anonymised(db, rater)
    for rater in kept:
        await assert_whole(db, rater)
    async with db.session() as session:
        kept_records = (await session.exec(select(ServiceRecord).where(col(ServiceRecord.id).in_([r.record_id for r in kept])))).all()  # fmt: skip
        assert all(r.applicant_phone and r.applicant_phone_check for r in kept_records)
        flags = {f.id: f for f in (await session.exec(select(SuspicionFlag))).all()}
    assert flags[data.flag_all_due].subject == "anonymised"
    assert flags[data.flag_all_due].open_key == f"same_phone:anonymised:{data.flag_all_due}"
    assert len(flags[data.flag_mixed].subject) == 64  # one of its ratings is kept: so is its key

    # One audit row per batch, naming every rating once, and nothing of the people.
    rows = await audit_rows(db)
    assert len(rows) == math.ceil(12 / BATCH)
    named = [rating_id for row in rows for rating_id in row.after["ids"]]
    assert sorted(named) == sorted(r.rating_id for r in due)
    assert sum(row.after["cases"] for row in rows) == 9
    assert len(await audit_rows(db, "retention.erase_contact")) == math.ceil(12 / BATCH)
    for rater in data.raters:
        assert all(rater.phone not in repr((r.after, r.reason, r.target_id)) for r in rows)

    # The figures: every count of every grouping, and the rollup rebuilt, as before.
    assert await figures(db) == before
    if backend == "postgresql":
        await refresh_once(db, full=True)
        assert await rollup_rows(db) == rollup_before

    # A second run: nothing due, nothing written, no audit row.
    written = await snapshot(db)
    again = await run_now(db, settings, now + timedelta(minutes=5), io.StringIO())
    assert (again.ratings, again.records) == (0, 0)
    assert await snapshot(db) == written


async def test_a_batch_failing_halfway_leaves_every_rating_of_it_untouched(
    settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    settings, now = batched(settings), utcnow()
    data = await build(db, settings, now, each=3)
    due = sorted((r for r in data.raters if r.due), key=lambda r: r.rating_id)
    # The second batch's second rating has a case whose sealed link token no configured key opens: the
    # batch's first rating and its case are written (flushed) before the failure, then rolled back.
    broken = due[BATCH + 1]
    assert broken.case_id is not None and due[BATCH].case_id is not None
    foreign = Fernet.generate_key().decode()
    async with db.engine.begin() as conn:
        sealed = Fernet(foreign.encode()).encrypt(b"token").decode()
        await conn.execute(text("UPDATE raterlink SET token_sealed = :t WHERE case_id = :c"), {"t": sealed, "c": broken.case_id})  # fmt: skip
    with pytest.raises(ValueError, match="cannot be decrypted"):
        await run_now(db, settings, now, io.StringIO())

    for rater in due:
        async with db.session() as session:
            rating = await session.get(Rating, rater.rating_id)
            assert rating is not None
            done = rating.anonymised_at is not None
        if done:
            await assert_anonymised(db, rater, record_erased=False)  # the records' batches come after
        else:
            await assert_whole(db, rater)
        assert done == (rater in due[:BATCH]), rater.kind
    assert len(await audit_rows(db)) == 1  # the first batch's only

    # With the key configured again the next run finishes the rest, each rating once.
    configure_pii_keys([*settings.pii_key_list(), foreign])
    try:
        report = await run_now(db, settings, now, io.StringIO())
    finally:
        configure_pii_keys(settings.pii_key_list())
    assert report.ratings == 12 - BATCH
    for rater in due:
        await assert_anonymised(db, rater)
    assert sorted(i for row in await audit_rows(db) for i in row.after["ids"]) == sorted(r.rating_id for r in due)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_the_schedule_runs_the_workflow_and_its_history_holds_no_rater_data(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    settings = batched(settings)
    data = await build(db, settings, utcnow(), each=1)
    client = dev_server.client
    async with running_worker(client, settings, db):
        handle, done = await ensure_retention_schedule(client, settings)
        try:
            assert done == "created" and handle.id == schedule_id(settings)
            assert (await ensure_retention_schedule(client, settings))[1] == "updated"
            described = await handle.describe()
            assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
            assert described.schedule.spec.intervals[0].every == timedelta(seconds=settings.retention_interval_seconds)
            await handle.trigger()

            async def started() -> str | None:
                actions = (await handle.describe()).info.recent_actions
                return actions[0].action.workflow_id if actions else None  # type: ignore[attr-defined]

            workflow_id = await eventually(started, timeout=30)
            run = client.get_workflow_handle_for(RetentionWorkflow.run, workflow_id)
            report = await asyncio.wait_for(run.result(), timeout=60)
            assert (report.ratings, report.cases, report.records) == (4, 3, 4)
            for rater in data.raters:
                await (assert_anonymised if rater.due else assert_whole)(db, rater)
            needles = [n for r in data.raters for n in (r.name, r.phone, r.email)]
            assert find_in_history(await run.fetch_history(), needles) == []
        finally:
            await handle.delete()
