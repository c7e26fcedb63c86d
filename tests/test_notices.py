"""Notices as people receive them: many cases of one unit, a mail server that is down, a mailbox that refuses.

Effects are counted: one mail per (case, notice, recipient), whatever else happens. On the
time-skipping server with the real worker and its notice relay; SQLite (the workflow is the subject).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.case.step_inputs import AcceptInput, AppealInput, RemindInput
from models.case.vocabulary import Stage, Verdict
from models.db import Database
from models.notifications import NoticeChannel, NoticeStatus, Notification
from runtime.mail_sink import MailSink, message_text, start_mail_sink
from runtime.seed import DemoCredentials
from tests.support.case_driver import (
    SCJ_STAFF,
    SUPERVISOR,
    CaseDriver,
    through_verification,
    timeline_notices,
    to_rater_response,
)
from tests.support.http import RATER
from tests.support.services import running_worker
from tests.support.settings import free_port
from tests.support.waiting import delivered, eventually
from tests.support.world import World
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

# Records of 市场监管局 (unit 2) in the demo data: every case below belongs to the same unit.
SCJ_RECORDS = ["DEMO-0001", "DEMO-0002", "DEMO-0004", "DEMO-0005", "DEMO-0007", "DEMO-0008"]


async def _notices(db: Database) -> list[Notification]:
    async with db.session() as session:
        return list((await session.exec(select(Notification).order_by(col(Notification.id)))).all())


async def _all_sent(db: Database, expected: int) -> list[Notification] | None:
    rows = await _notices(db)
    return rows if len(rows) >= expected and all(n.status == NoticeStatus.SENT for n in rows) else None


async def test_many_cases_of_one_unit_each_notice_once_per_recipient(world: World) -> None:
    idle = [await world.open(record_no=record) for record in SCJ_RECORDS[:3]]
    appealed = [await world.open(record_no=record) for record in SCJ_RECORDS[3:5]]
    for case in idle:
        await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
        await case.do(CaseWorkflow.remind, RemindInput(actor=SUPERVISOR, message="请抓紧回访"))
    for case in appealed:
        await through_verification(case, Verdict.DISPUTED)
        await case.do(CaseWorkflow.file_appeal, AppealInput(actor=SCJ_STAFF, reason="误评", evidence=["录像"]))
    # Every reminder and both escalation rungs of every running deadline fall due.
    await world.sleep(timedelta(days=14))

    expected: Counter[tuple[int, str, str]] = Counter()
    for case in [*idle, *appealed]:
        await eventually(functools.partial(_escalated_twice, case), timeout=30)
        for notice in timeline_notices(await case.events()):
            for recipient in notice["recipients"]:
                expected[(case.case_id, notice["kind"], recipient)] += 1
    total = sum(expected.values())
    sent = await eventually(lambda: _all_sent(world.db, total), timeout=30)
    assert len(sent) == total

    # The mail server got each notice exactly once: no key shared across cases, none repeated.
    message_ids = [str(m["Message-ID"]) for m in world.mailbox.messages]
    assert len(message_ids) == total and len(set(message_ids)) == total
    assert {n.message_id for n in sent} == set(message_ids)
    for case in idle:
        kinds = Counter(n.kind for n in sent if n.case_id == case.case_id and n.recipient_ref == "user:2")
        # The supervisor (also the management office here) hears of each overdue deadline twice: rung 1 and 2.
        assert kinds["escalation"] == 4, kinds
        staff = Counter(n.kind for n in sent if n.case_id == case.case_id and n.recipient_ref == "user:4")
        assert staff["supervisor_reminder"] == 1 and staff["reminder"] >= 2, staff
    for case in appealed:
        assert [n.kind for n in sent if n.case_id == case.case_id and n.recipient_ref == "user:3"].count(
            "appeal_filed"
        ) == 1
    subjects = Counter(str(m["Subject"]) for m in world.mailbox.to("supervisor@hcp.localhost"))
    assert all(count == 1 for count in subjects.values()), subjects


async def _escalated_twice(case: CaseDriver) -> bool:
    events = await case.events()
    return any(e.action == "escalated" for e in events)


@pytest.fixture
def private_smtp() -> Iterator[tuple[int, MailSink]]:
    """An SMTP server of this test's own, so it can be stopped and started again."""
    port = free_port()
    controller, sink = start_mail_sink("127.0.0.1", port)
    yield port, sink
    controller.stop()


async def test_mail_server_down_steps_go_on_and_the_notice_follows(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
) -> None:
    port = free_port()
    mail = settings.model_copy(update={"smtp_port": port})
    async with running_worker(time_skipping.client, mail, db):
        case = await CaseDriver.open(time_skipping, offline_api, demo, db, mail)
        # No mail server listens: every step, notice or not, is taken at once.
        started = time.monotonic()
        await case.do(CaseWorkflow.remind, RemindInput(actor=SUPERVISOR, message="请抓紧回访"))
        await through_verification(case)
        assert time.monotonic() - started < 5
        assert (await case.state()).stage == Stage.RECTIFICATION

        async def retried() -> list[Notification] | None:
            rows = await _notices(db)
            return rows if rows and rows[0].attempts >= 2 and rows[0].status == NoticeStatus.PENDING else None

        [waiting] = await eventually(retried, timeout=20)
        assert waiting.last_error and "@" not in waiting.last_error

        controller, sink = start_mail_sink("127.0.0.1", port)
        try:
            sent = await eventually(lambda: _all_sent(db, 1), timeout=30)
            assert [n.kind for n in sent] == ["supervisor_reminder"]
            await asyncio.sleep(1)  # nothing more arrives: the retries did not pile up
            assert len(sink.messages) == 1
        finally:
            controller.stop()


async def test_refused_mailbox_the_sms_goes_out_and_the_case_moves_on(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    private_smtp: tuple[int, MailSink],
) -> None:
    port, sink = private_smtp
    sink.refuse.add(RATER["email"])
    mail = settings.model_copy(update={"smtp_port": port})
    async with running_worker(time_skipping.client, mail, db):
        case = await CaseDriver.open(time_skipping, offline_api, demo, db, mail)
        await to_rater_response(case)

        async def settled() -> list[Notification] | None:
            rows = [n for n in await _notices(db) if n.kind == "feedback"]
            done = {NoticeStatus.SENT, NoticeStatus.FAILED}
            return rows if len(rows) == 2 and all(n.status in done for n in rows) else None

        rows = {n.channel: n for n in await eventually(settled, timeout=20)}
        # The case waits for the rater's answer as if nothing failed; the failure is on its timeline.
        assert (await case.state()).stage == Stage.RATER_RESPONSE
    assert rows[NoticeChannel.EMAIL].status == NoticeStatus.FAILED
    assert rows[NoticeChannel.EMAIL].attempts == 1, "a 550 is not retried"
    assert rows[NoticeChannel.EMAIL].last_error.startswith("SMTP 550")
    assert RATER["email"] not in rows[NoticeChannel.EMAIL].last_error
    assert rows[NoticeChannel.SMS].status == NoticeStatus.SENT
    assert sink.messages == []
    texts = [p.read_text(encoding="utf-8") for p in mail.sms_dir.glob("*.txt")]
    assert len(texts) == 1 and "/r/" in texts[0]
    failed = [e for e in await case.events() if e.action == "notice_failed"]
    assert [(e.data["channel"], e.data["recipient"]) for e in failed] == [("email", "rater")]


async def test_notices_speak_the_words_of_the_case_profile(world: World) -> None:
    # The national profile labels the levels 很好 … 很差; Yantai's (the demo region's) 非常满意 … 非常不满意.
    national = await world.open(policy="national")
    await to_rater_response(national)
    [feedback] = await delivered(world.mailbox, RATER["email"])
    assert "（很差）" in message_text(feedback) and "非常不满意" not in message_text(feedback)
    await national.do(CaseWorkflow.remind, RemindInput(actor=SUPERVISOR, message="请回复"))
    [remind] = await delivered(world.mailbox, "scj@hcp.localhost", subject="督办提醒")
    assert "评价等级：很差" in message_text(remind)
