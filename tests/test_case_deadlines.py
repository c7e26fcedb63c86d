"""The case workflow on the time-skipping test server: the callback deadline, validators, automatic steps."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.case_types import (
    AcceptInput,
    Actor,
    CallbackInput,
    CaseSnapshot,
    ErrorType,
    ExplanationInput,
    FeedbackInput,
    Stage,
    Verdict,
    VerificationInput,
)
from models.db import Database
from runtime.mail_sink import MailSink, message_text
from runtime.relay import OutboxRelay
from runtime.seed import DemoCredentials
from tests.conftest import bad_rating, case_events, case_row, eventually, running_worker
from workflows.case import CaseWorkflow

# Only the SQLite backend here: the workflow is the subject, and the API tests cover both databases.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

SCJ_STAFF = Actor(user_id=4, role="unit_staff", unit_id=2)  # demo user scj_staff of 市场监管局 (unit 2)
RSJ_STAFF = Actor(user_id=5, role="unit_staff", unit_id=3)


async def open_case(
    api: httpx.AsyncClient,
    demo: DemoCredentials,
    env: WorkflowEnvironment,
    db: Database,
    settings: Settings,
    **rating: object,
) -> tuple[int, WorkflowHandle[CaseWorkflow, CaseSnapshot]]:
    """Submit a bad rating with Temporal unreachable, then let the outbox relay start its case on `env`."""
    response = await api.post("/api/v1/ratings", json=bad_rating(**rating), headers={"X-API-Key": demo.api_key})
    assert response.status_code == 201, response.text
    body = response.json()
    assert await OutboxRelay(db, env.client, settings).drain_once() == 1
    handle = env.client.get_workflow_handle_for(CaseWorkflow.run, f"case-rating-{body['rating_id']}")
    return body["case_id"], handle


async def test_callback_deadline_passes_case_overdue_supervisor_mailed(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    mailbox: MailSink,
) -> None:
    async with running_worker(time_skipping.client, settings, db):
        case_id, handle = await open_case(offline_api, demo, time_skipping, db, settings)
        snapshot = await handle.execute_update(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
        assert snapshot.stage == Stage.VERIFICATION and not snapshot.overdue
        assert snapshot.callback_due_at is not None

        # Nobody calls the rater back. 1 working day is at most ~9 calendar days (Spring Festival).
        await time_skipping.sleep(timedelta(days=10))
        assert (await handle.query(CaseWorkflow.state)).overdue

        events = await eventually(
            lambda: _events_with(db, case_id, "supervisor_notified"),
        )
    actions = [e.action for e in events]
    assert actions == ["opened", "accepted", "overdue", "supervisor_notified"]
    overdue_event = events[2]
    assert overdue_event.at >= snapshot.callback_due_at
    assert events[3].data == {"sent": True, "recipients": ["user:2"], "reason": ""}

    case = await case_row(db, case_id)
    assert case.overdue and case.stage == Stage.VERIFICATION

    mails = mailbox.to("supervisor@hcp.localhost")
    assert len(mails) == 1
    assert "回访已超时" in str(mails[0]["Subject"])
    body = message_text(mails[0])
    assert "烟台市市场监督管理局" in body and "DEMO-0001" in body
    # The supervisor's notice names the case, not the rater.
    assert "13912345678" not in body and "张三丰" not in body


async def test_callback_in_time_is_not_overdue(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    mailbox: MailSink,
) -> None:
    async with running_worker(time_skipping.client, settings, db):
        case_id, handle = await open_case(offline_api, demo, time_skipping, db, settings)
        await handle.execute_update(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
        await handle.execute_update(
            CaseWorkflow.log_callback, CallbackInput(actor=SCJ_STAFF, reached=False, note="未接通")
        )
        await time_skipping.sleep(timedelta(days=10))
        state = await handle.query(CaseWorkflow.state)
    assert state.callback_done and not state.overdue
    assert not (await case_row(db, case_id)).overdue
    assert mailbox.messages == []


async def test_validators_reject_wrong_stage_wrong_unit_and_missing_callback(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
) -> None:
    async with running_worker(time_skipping.client, settings, db):
        case_id, handle = await open_case(offline_api, demo, time_skipping, db, settings)

        async def rejected(update, arg) -> ApplicationError:  # type: ignore[no-untyped-def]
            with pytest.raises(WorkflowUpdateFailedError) as info:
                await handle.execute_update(update, arg)
            assert isinstance(info.value.cause, ApplicationError)
            return info.value.cause

        verify = VerificationInput(actor=SCJ_STAFF, verdict=Verdict.VALID, findings="属实")
        assert (await rejected(CaseWorkflow.verify, verify)).type == ErrorType.WRONG_STAGE
        assert (await rejected(CaseWorkflow.accept, AcceptInput(actor=RSJ_STAFF))).type == ErrorType.NOT_ALLOWED
        await handle.execute_update(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
        # A real-name bad review must be called back before the verdict.
        error = await rejected(CaseWorkflow.verify, verify)
        assert error.type == ErrorType.WRONG_STAGE and "回访" in error.message
    # Rejected updates leave no trace in the timeline.
    assert [e.action for e in await case_events(db, case_id)] == ["opened", "accepted"]


async def test_anonymous_no_legal_basis_path_closes_without_mail(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    mailbox: MailSink,
) -> None:
    async with running_worker(time_skipping.client, settings, db):
        case_id, handle = await open_case(
            offline_api, demo, time_skipping, db, settings, real_name=False, rater=None, record_no="DEMO-0002"
        )
        await handle.execute_update(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
        # Anonymous: no callback needed before the verdict.
        snapshot = await handle.execute_update(
            CaseWorkflow.verify,
            VerificationInput(actor=SCJ_STAFF, verdict=Verdict.NO_LEGAL_BASIS, findings="诉求无政策依据"),
        )
        assert snapshot.stage == Stage.EXPLANATION
        await handle.execute_update(
            CaseWorkflow.explain, ExplanationInput(actor=SCJ_STAFF, explanation="依法须补交材料")
        )
        await handle.execute_update(
            CaseWorkflow.give_feedback, FeedbackInput(actor=SCJ_STAFF, message="已说明政策依据")
        )
        result = await handle.result()
    assert result.stage == Stage.CLOSED and result.verdict == Verdict.NO_LEGAL_BASIS
    events = await case_events(db, case_id)
    assert [e.action for e in events] == [
        "opened", "accepted", "verified", "explained", "feedback_written", "feedback_sent", "closed",
    ]  # fmt: skip
    assert events[5].data == {"sent": False, "recipients": [], "reason": "the rater left no email address"}
    case = await case_row(db, case_id)
    assert case.stage == Stage.CLOSED and case.closed_at is not None
    assert mailbox.messages == []


async def _events_with(db: Database, case_id: int, action: str) -> list | None:  # type: ignore[type-arg]
    events = await case_events(db, case_id)
    return events if any(e.action == action for e in events) else None
