"""Every path through the case state machine, on the time-skipping test server with real activities.

SQLite only: the workflow is the subject here; the API tests cover both databases.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.case.records import CaseEvent
from models.case.step_inputs import (
    AcceptInput,
    AppealDecisionInput,
    AppealInput,
    CallbackInput,
    CannotRectifyDecisionInput,
    CannotRectifyRequestInput,
    ExplanationInput,
    ExtendInput,
    ExtensionDecisionInput,
    ExtensionRequestInput,
    FeedbackInput,
    InstructionInput,
    LedgerInput,
    RaterResponseInput,
    ReassignInput,
    RectificationInput,
    RemindInput,
    VerificationInput,
)
from models.case.vocabulary import (
    RATER_ACTOR,
    CaseSnapshot,
    DeadlineView,
    ErrorType,
    Judgement,
    Outcome,
    Stage,
    Verdict,
)
from models.db import Database
from models.policy import DeadlineName
from models.ratings import Rating
from models.search_attributes import CASE_ESCALATION_RUNG, CASE_OVERDUE, CASE_STAGE
from runtime.mail_sink import MailSink, message_text
from runtime.seed import DemoCredentials
from tests.support.case_driver import (
    REVIEWER,
    RSJ_STAFF,
    SCJ_STAFF,
    SUPERVISOR,
    CaseDriver,
    through_verification,
    timeline_notices,
    to_rater_response,
)
from tests.support.db import case_row
from tests.support.services import running_worker
from tests.support.waiting import delivered, eventually
from tests.support.world import World
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


# ---- deadlines, reminders, escalation ------------------------------------------------------------


async def test_overdue_callback_escalates_rung_one_then_rung_two(world: World) -> None:
    case = await world.open()  # Yantai: callback 1wd, reminder 4h before; rung 2 one day after
    await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await world.sleep(timedelta(days=14))
    events = await eventually(lambda: _escalated(case, DeadlineName.CALLBACK, 2))

    callback = [e for e in events if e.data.get("deadline") == "callback" and e.action in ("overdue", "escalated")]
    assert [(e.action, e.data["rung"], e.data["notify"]) for e in callback] == [
        ("overdue", 1, "supervisor"),
        ("escalated", 2, "management_office"),
    ]
    rung2 = next(e for e in callback if e.action == "escalated")
    state = await case.state()
    due = state.deadline(DeadlineName.CALLBACK)
    assert due is not None and due.state == "overdue" and due.rung == 2
    assert rung2.at >= due.due_at + timedelta(days=1)

    notices = await case.notices()
    assert {"kind": "reminder", "audience": "unit_staff"}.items() <= notices[0].items()
    assert notices[0]["recipients"] == ["user:4"]
    assert any(n["kind"] == "escalation" and n["audience"] == "management_office" for n in notices)

    row = await case_row(world.db, case.case_id)
    assert row.overdue and row.escalation_rung == 2 and row.stage == Stage.VERIFICATION
    indexed = (await case.handle.describe()).typed_search_attributes
    assert indexed.get(CASE_OVERDUE) is True and indexed.get(CASE_ESCALATION_RUNG) == 2
    assert indexed.get(CASE_STAGE) == "verification"
    await delivered(world.mailbox, "supervisor@hcp.localhost", subject="第2级")
    await delivered(world.mailbox, "scj@hcp.localhost", subject="时限将至")
    subjects = [str(m["Subject"]) for m in world.mailbox.to("supervisor@hcp.localhost")]
    assert any("第1级" in s and "回访" in s for s in subjects) and any("第2级" in s for s in subjects)
    assert any("时限将至" in str(m["Subject"]) for m in world.mailbox.to("scj@hcp.localhost"))
    body = message_text(world.mailbox.to("supervisor@hcp.localhost")[0])
    assert "13912345678" not in body and "张三丰" not in body


def _deadline(state: CaseSnapshot, name: DeadlineName) -> DeadlineView:
    found = state.deadline(name)
    assert found is not None, name
    return found


async def _escalated(case: CaseDriver, name: DeadlineName, rung: int) -> list[CaseEvent] | None:
    events = await case.events()
    done = any(e.data.get("deadline") == name.value and e.data.get("rung") == rung for e in events)
    notified = sum(1 for n in timeline_notices(events) if n["kind"] == "escalation")
    return events if done and notified >= rung else None


async def test_callback_in_time_is_not_overdue(world: World) -> None:
    case = await world.open()
    await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await case.do(CaseWorkflow.log_callback, CallbackInput(actor=SCJ_STAFF, reached=False, note="未接通"))
    await case.do(CaseWorkflow.log_callback, CallbackInput(actor=SCJ_STAFF, reached=True, note="已接通"))
    await case.do(
        CaseWorkflow.verify,
        VerificationInput(actor=SCJ_STAFF, verdict=Verdict.VALID, findings="属实", judgement=Judgement.REASONABLE),
    )
    state = await case.state()
    assert _deadline(state, DeadlineName.CALLBACK).state == "met"
    assert _deadline(state, DeadlineName.VERIFICATION).state == "met"
    assert not state.overdue and state.stage == Stage.RECTIFICATION


async def test_cannot_rectify_refused_then_approved_closes_and_tells_the_rater(world: World) -> None:
    case = await world.open()
    await through_verification(case)
    ask = CannotRectifyRequestInput(
        actor=SCJ_STAFF,
        reasons="需修改省级系统，本单位无权限",
        explanation="该功能由省级平台统一建设，我局已向省级部门反映。",
    )
    state = await case.do(CaseWorkflow.request_cannot_rectify, ask)
    assert state.pending_cannot_rectify and state.stage == Stage.RECTIFICATION
    assert (await case.rejected(CaseWorkflow.request_cannot_rectify, ask)).type == ErrorType.ALREADY_TAKEN
    assert (
        await case.rejected(
            CaseWorkflow.decide_cannot_rectify, CannotRectifyDecisionInput(actor=SCJ_STAFF, approve=True)
        )
    ).type == ErrorType.NOT_ALLOWED
    assert await delivered(world.mailbox, "supervisor@hcp.localhost", subject="无法整改申请")

    # Refused: the unit rectifies as before (and may ask again).
    refused = await case.do(
        CaseWorkflow.decide_cannot_rectify,
        CannotRectifyDecisionInput(actor=SUPERVISOR, approve=False, note="可协调解决"),
    )
    assert refused.stage == Stage.RECTIFICATION and not refused.pending_cannot_rectify
    await case.do(CaseWorkflow.request_cannot_rectify, ask)

    # Approved: closed as cannot-rectify, counted apart from rectified cases, the rater told why (no answer link).
    approved = await case.do(
        CaseWorkflow.decide_cannot_rectify, CannotRectifyDecisionInput(actor=SUPERVISOR, approve=True, note="同意")
    )
    assert approved.stage == Stage.CLOSED and approved.outcome == Outcome.CANNOT_RECTIFY
    assert (await case.handle.result()).outcome == Outcome.CANNOT_RECTIFY
    [mail] = await delivered(world.mailbox, "zhang.sanfeng@example.com")
    assert "该功能由省级平台统一建设" in message_text(mail) and "/r/" not in message_text(mail)
    row = await case_row(world.db, case.case_id)
    assert row.stage == Stage.CLOSED and row.outcome == Outcome.CANNOT_RECTIFY
    assert state.deadline(DeadlineName.RECTIFICATION_IMMEDIATE) is not None
    actions = await case.actions()
    assert actions.count("cannot_rectify_requested") == 2 and actions[-1] == "cannot_rectify_approved"


async def test_an_extension_overtaken_by_a_later_deadline_cannot_be_approved(world: World) -> None:
    case = await world.open()
    await through_verification(case)
    due = (await case.state()).deadline(DeadlineName.RECTIFICATION_IMMEDIATE)
    assert due is not None
    asked = due.due_at + timedelta(days=2)
    await case.do(
        CaseWorkflow.request_extension,
        ExtensionRequestInput(
            actor=SCJ_STAFF, deadline=DeadlineName.RECTIFICATION_IMMEDIATE, new_due_at=asked, reason="需采购设备"
        ),
    )
    # Meanwhile a supervisor moves the deadline further than the unit asked.
    further = due.due_at + timedelta(days=5)
    await case.do(
        CaseWorkflow.extend_deadline,
        ExtendInput(actor=SUPERVISOR, deadline=DeadlineName.RECTIFICATION_IMMEDIATE, new_due_at=further, reason="统筹"),
    )
    error = await case.rejected(CaseWorkflow.decide_extension, ExtensionDecisionInput(actor=SUPERVISOR, approve=True))
    assert error.type == ErrorType.INVALID_INPUT and "不晚于当前期限" in error.message
    state = await case.do(CaseWorkflow.decide_extension, ExtensionDecisionInput(actor=SUPERVISOR, approve=False))
    assert state.deadline(DeadlineName.RECTIFICATION_IMMEDIATE).due_at == further  # type: ignore[union-attr]


async def test_extension_approved_moves_the_deadline_and_refused_does_not(world: World) -> None:
    case = await world.open()
    await through_verification(case)
    due = (await case.state()).deadline(DeadlineName.RECTIFICATION_IMMEDIATE)
    assert due is not None
    later = due.due_at + timedelta(days=10)
    await case.do(
        CaseWorkflow.request_extension,
        ExtensionRequestInput(
            actor=SCJ_STAFF, deadline=DeadlineName.RECTIFICATION_IMMEDIATE, new_due_at=later, reason="需采购设备"
        ),
    )
    error = await case.rejected(
        CaseWorkflow.request_extension,
        ExtensionRequestInput(
            actor=SCJ_STAFF, deadline=DeadlineName.RECTIFICATION_IMMEDIATE, new_due_at=later, reason="again"
        ),
    )
    assert "待审批" in error.message
    assert (
        await case.rejected(CaseWorkflow.decide_extension, ExtensionDecisionInput(actor=SCJ_STAFF, approve=True))
    ).type == (ErrorType.NOT_ALLOWED)
    state = await case.do(
        CaseWorkflow.decide_extension, ExtensionDecisionInput(actor=SUPERVISOR, approve=True, note="同意")
    )
    moved = state.deadline(DeadlineName.RECTIFICATION_IMMEDIATE)
    assert moved is not None and moved.due_at == later and moved.extended

    # Past the old due date nothing is overdue; past the new one it is.
    await world.sleep(due.due_at - await world.env.get_current_time() + timedelta(hours=1))
    assert not (await case.state()).overdue

    # A refused request leaves the deadline where it was.
    await case.do(
        CaseWorkflow.request_extension,
        ExtensionRequestInput(
            actor=SCJ_STAFF,
            deadline=DeadlineName.RECTIFICATION_IMMEDIATE,
            new_due_at=later + timedelta(days=30),
            reason="再延",
        ),
    )
    state = await case.do(
        CaseWorkflow.decide_extension, ExtensionDecisionInput(actor=SUPERVISOR, approve=False, note="不同意")
    )
    assert _deadline(state, DeadlineName.RECTIFICATION_IMMEDIATE).due_at == later
    await world.sleep(timedelta(days=10))
    assert (await case.state()).overdue
    actions = await case.actions()
    assert "extension_approved" in actions and "extension_refused" in actions


async def test_supervisor_extends_remind_and_instruct(world: World) -> None:
    case = await world.open()
    await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    verification = (await case.state()).deadline(DeadlineName.VERIFICATION)
    assert verification is not None
    new_due = verification.due_at + timedelta(days=3)
    state = await case.do(
        CaseWorkflow.extend_deadline,
        ExtendInput(actor=SUPERVISOR, deadline=DeadlineName.VERIFICATION, new_due_at=new_due, reason="节前人手紧张"),
    )
    assert _deadline(state, DeadlineName.VERIFICATION).due_at == new_due
    await case.do(CaseWorkflow.remind, RemindInput(actor=SUPERVISOR, message="请今日内回访"))
    await case.do(CaseWorkflow.instruct, InstructionInput(actor=SUPERVISOR, instruction="由分管领导牵头核实"))
    assert (await case.rejected(CaseWorkflow.remind, RemindInput(actor=SCJ_STAFF))).type == ErrorType.NOT_ALLOWED
    assert await delivered(world.mailbox, "scj@hcp.localhost", subject="督办提醒")
    assert await delivered(world.mailbox, "scj@hcp.localhost", subject="批示")
    assert [a for a in await case.actions() if a in {"deadline_extended", "supervisor_reminded", "instructed"}] == [
        "deadline_extended",
        "supervisor_reminded",
        "instructed",
    ]


async def test_reassign_moves_the_case_and_restarts_the_round(world: World) -> None:
    case = await world.open()
    await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    before = (await case.state()).deadline(DeadlineName.VERIFICATION)
    await world.sleep(timedelta(hours=5))
    state = await case.do(CaseWorkflow.reassign, ReassignInput(actor=SUPERVISOR, to_unit_id=3, reason="属人社局职责"))
    assert state.stage == Stage.ASSIGNED and state.unit_id == 3
    after = state.deadline(DeadlineName.VERIFICATION)
    assert before is not None and after is not None and after.started_at > before.started_at
    assert (await case.rejected(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))).type == ErrorType.NOT_ALLOWED
    await case.do(CaseWorkflow.accept, AcceptInput(actor=RSJ_STAFF))
    row = await case_row(world.db, case.case_id)
    assert row.unit_id == 3 and row.stage == Stage.VERIFICATION
    assert await delivered(world.mailbox, "rsj@hcp.localhost", subject="改派")


async def test_ledger_due_date_is_bounded_by_the_profile(world: World) -> None:
    case = await world.open()
    await through_verification(case)
    state = await case.state()
    assert state.ledger_latest_due is not None
    too_late = state.ledger_latest_due + timedelta(days=1)
    error = await case.rejected(CaseWorkflow.ledger, LedgerInput(actor=SCJ_STAFF, due_at=too_late, plan="改造大厅"))
    assert error.type == ErrorType.INVALID_INPUT and "不得晚于" in error.message
    ok_due = state.ledger_latest_due - timedelta(days=1)
    state = await case.do(CaseWorkflow.ledger, LedgerInput(actor=SCJ_STAFF, due_at=ok_due, plan="改造大厅"))
    assert _deadline(state, DeadlineName.RECTIFICATION_IMMEDIATE).state == "replaced"
    assert _deadline(state, DeadlineName.RECTIFICATION_LEDGER_MAX).due_at == ok_due
    await case.do(CaseWorkflow.rectify, RectificationInput(actor=SCJ_STAFF, measures="大厅改造完成"))
    rectified = next(e for e in await case.events() if e.action == "rectified")
    assert rectified.data["mode"] == "ledger"


# ---- feedback, rater answer, reopening ------------------------------------------------------------


async def test_rater_satisfied_closes_the_case(world: World) -> None:
    case = await world.open()
    await to_rater_response(case)
    assert (
        await case.rejected(CaseWorkflow.rater_respond, RaterResponseInput(actor=SCJ_STAFF, satisfied=True))
    ).type == (ErrorType.NOT_ALLOWED)
    await case.do(CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=True))
    result = await case.handle.result()
    assert result.stage == Stage.CLOSED and result.outcome == Outcome.SATISFIED
    feedback = await delivered(world.mailbox, "zhang.sanfeng@example.com")
    assert len(feedback) == 1 and "/r/" in message_text(feedback[0])
    sms = list(world.settings.sms_dir.glob("*.txt"))
    assert len(sms) == 1 and "13912345678" in sms[0].read_text()


async def test_rater_silence_counts_as_the_profile_says(world: World) -> None:
    case = await world.open()  # Yantai: silence counts as satisfied
    await to_rater_response(case)
    await world.sleep(timedelta(days=20))
    result = await case.handle.result()
    assert result.outcome == Outcome.SATISFIED_BY_SILENCE
    assert "rater_silent" in await case.actions()


async def test_silence_is_not_satisfied_in_pingdingshan_and_reopens(world: World) -> None:
    case = await world.open(policy="pingdingshan")
    await to_rater_response(case)
    await world.sleep(timedelta(days=20))
    await eventually(lambda: case.round_is(2))
    state = await case.state()
    assert state.stage == Stage.ASSIGNED and state.round == 2 and not state.callback_done
    assert "reopened" in await case.actions()


async def test_not_satisfied_reopens_up_to_the_maximum_then_escalates(world: World) -> None:
    case = await world.open(policy="demo")  # demo: one reopen round at most
    await to_rater_response(case)
    await case.do(CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=False))
    await eventually(lambda: case.round_is(2))
    await to_rater_response(case)
    await case.do(CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=False))
    result = await case.handle.result()
    assert result.stage == Stage.CLOSED and result.outcome == Outcome.UNSATISFIED and result.round == 2
    notices = await case.notices()
    assert any(n["kind"] == "unsatisfied_final" and n["audience"] == "management_office" for n in notices)
    assert [a for a in await case.actions() if a == "reopened"] == ["reopened"]
    assert len(await delivered(world.mailbox, "zhang.sanfeng@example.com", count=2)) == 2
    # Each round is a run of its own: the second began where the first continued as new, and the
    # timeline's event numbers go on across them without a gap or a repeat.
    history = await case.handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id, "round 2 should be a run continued from round 1"
    numbers = [int(e.event_key.split("-", 1)[0]) for e in await case.events() if e.event_key[:1].isdigit()]
    assert numbers == list(range(1, len(numbers) + 1))
    assert await delivered(world.mailbox, "scj@hcp.localhost", subject="重新交办")


# ---- explanation, appeal, anonymous ----------------------------------------------------------------


async def test_appeal_upheld_means_not_adopted(world: World) -> None:
    case = await world.open()
    await through_verification(case, Verdict.DISPUTED)
    assert (await case.state()).stage == Stage.APPEAL_FILING
    await case.do(
        CaseWorkflow.file_appeal,
        AppealInput(actor=SCJ_STAFF, reason="评价人未到窗口办理", evidence=["监控录像 2026-11-20"]),
    )
    assert await delivered(world.mailbox, "reviewer@hcp.localhost", subject="申诉")
    error = await case.rejected(
        CaseWorkflow.decide_appeal, AppealDecisionInput(actor=SUPERVISOR, upheld=True, reason="x")
    )
    assert error.type == ErrorType.NOT_ALLOWED
    await case.do(
        CaseWorkflow.decide_appeal, AppealDecisionInput(actor=REVIEWER, upheld=True, reason="证据充分，属误评")
    )
    result = await case.handle.result()
    assert result.stage == Stage.NOT_ADOPTED and result.outcome == Outcome.NOT_ADOPTED
    async with world.db.session() as session:
        rating = (await session.exec(select(Rating))).one()
        assert rating.adopted is False
    assert await delivered(world.mailbox, "supervisor@hcp.localhost", subject="不予采纳")


async def test_appeal_rejected_goes_back_to_rectification(world: World) -> None:
    case = await world.open()
    await through_verification(case, Verdict.DISPUTED)
    await case.do(CaseWorkflow.file_appeal, AppealInput(actor=SCJ_STAFF, reason="恶意差评", evidence=["通话记录"]))
    state = await case.do(
        CaseWorkflow.decide_appeal, AppealDecisionInput(actor=REVIEWER, upheld=False, reason="证据不足")
    )
    assert state.stage == Stage.RECTIFICATION
    assert state.deadline(DeadlineName.RECTIFICATION_IMMEDIATE) is not None


async def test_unused_appeal_window_falls_back_to_rectification(world: World) -> None:
    case = await world.open()
    await through_verification(case, Verdict.DISPUTED)
    await world.sleep(timedelta(days=12))
    await eventually(lambda: case.stage_is(Stage.RECTIFICATION))
    assert "appeal_window_expired" in await case.actions()


async def test_late_appeal_decision_escalates(world: World) -> None:
    case = await world.open()
    await through_verification(case, Verdict.DISPUTED)
    await case.do(CaseWorkflow.file_appeal, AppealInput(actor=SCJ_STAFF, reason="误评", evidence=["材料"]))
    await world.sleep(timedelta(days=15))
    await eventually(lambda: _escalated(case, DeadlineName.APPEAL_DECISION, 1))
    reminders = [n for n in await case.notices() if n["kind"] == "reminder"]
    assert reminders and reminders[0]["audience"] == "reviewers"


async def test_no_legal_basis_explanation_path(world: World) -> None:
    case = await world.open()
    await through_verification(case, Verdict.NO_LEGAL_BASIS)
    assert (await case.rejected(CaseWorkflow.rectify, RectificationInput(actor=SCJ_STAFF, measures="x"))).type == (
        ErrorType.WRONG_STAGE
    )
    await case.do(CaseWorkflow.explain, ExplanationInput(actor=SCJ_STAFF, explanation="依法须本人到场"))
    await case.do(CaseWorkflow.give_feedback, FeedbackInput(actor=SCJ_STAFF, message="已说明政策依据"))
    await eventually(lambda: case.stage_is(Stage.RATER_RESPONSE))
    await case.do(CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=True))
    assert (await case.handle.result()).verdict == Verdict.NO_LEGAL_BASIS


async def test_anonymous_review_skips_callback_and_closes_without_contact(world: World) -> None:
    case = await world.open(real_name=False, rater=None, record_no="DEMO-0002")
    await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    error = await case.rejected(CaseWorkflow.log_callback, CallbackInput(actor=SCJ_STAFF, reached=False, note="x"))
    assert "匿名" in error.message
    await case.do(
        CaseWorkflow.verify,
        VerificationInput(actor=SCJ_STAFF, verdict=Verdict.VALID, findings="属实", judgement=Judgement.REASONABLE),
    )
    await case.do(CaseWorkflow.rectify, RectificationInput(actor=SCJ_STAFF, measures="已整改"))
    await case.do(CaseWorkflow.give_feedback, FeedbackInput(actor=SCJ_STAFF, message="已整改"))
    result = await case.handle.result()
    assert result.outcome == Outcome.NO_CONTACT
    actions = await case.actions()
    assert "callback_not_required" in actions and "feedback_not_sent" in actions
    assert result.deadline(DeadlineName.CALLBACK) is None


async def test_validators_reject_wrong_stage_and_wrong_unit(world: World) -> None:
    case = await world.open()
    verify = VerificationInput(actor=SCJ_STAFF, verdict=Verdict.VALID, findings="属实", judgement=Judgement.REASONABLE)
    assert (await case.rejected(CaseWorkflow.verify, verify)).type == ErrorType.WRONG_STAGE
    assert (await case.rejected(CaseWorkflow.accept, AcceptInput(actor=RSJ_STAFF))).type == ErrorType.NOT_ALLOWED
    await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    error = await case.rejected(CaseWorkflow.verify, verify)
    assert error.type == ErrorType.WRONG_STAGE and "回访" in error.message
    assert await case.actions() == ["opened", "accepted"]


async def test_verified_event_records_the_judgement_only_when_given(world: World) -> None:
    judged = await world.open()
    await judged.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await judged.do(CaseWorkflow.log_callback, CallbackInput(actor=SCJ_STAFF, reached=True, note="已回访"))
    verification = VerificationInput(
        actor=SCJ_STAFF,
        verdict=Verdict.VALID,
        findings="部分属实",
        judgement=Judgement.PARTLY_REASONABLE,
        evidence=["窗口排队记录", "文号 烟政服〔2026〕12号"],
    )
    await judged.do(CaseWorkflow.verify, verification)
    verified = next(e for e in await judged.events() if e.action == "verified")
    assert verified.data["judgement"] == "partly_reasonable"
    assert verified.data["evidence"] == ["窗口排队记录", "文号 烟政服〔2026〕12号"]

    # An update sent before the judgement existed (as recorded histories hold) is still taken, and
    # records neither key.
    unjudged = await world.open(record_no="DEMO-0002")
    await unjudged.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await unjudged.do(CaseWorkflow.log_callback, CallbackInput(actor=SCJ_STAFF, reached=True, note="已回访"))
    old = VerificationInput(actor=SCJ_STAFF, verdict=Verdict.NO_LEGAL_BASIS, findings="无依据")
    assert (await unjudged.do(CaseWorkflow.verify, old)).stage == Stage.EXPLANATION
    verified = next(e for e in await unjudged.events() if e.action == "verified")
    assert "judgement" not in verified.data and "evidence" not in verified.data


# ---- every stage deadline, and durability across worker restarts -----------------------------------


async def _to_verification(case: CaseDriver) -> None:
    await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await case.do(CaseWorkflow.log_callback, CallbackInput(actor=SCJ_STAFF, reached=True, note="已回访"))


async def _to_rectification(case: CaseDriver) -> None:
    await through_verification(case)


async def _to_ledger(case: CaseDriver) -> None:
    await through_verification(case)
    state = await case.state()
    assert state.ledger_latest_due is not None
    await case.do(CaseWorkflow.ledger, LedgerInput(actor=SCJ_STAFF, due_at=state.ledger_latest_due, plan="台账"))


async def _to_explanation(case: CaseDriver) -> None:
    await through_verification(case, Verdict.NO_LEGAL_BASIS)


async def _to_feedback(case: CaseDriver) -> None:
    await through_verification(case)
    await case.do(CaseWorkflow.rectify, RectificationInput(actor=SCJ_STAFF, measures="整改"))


@pytest.mark.parametrize(
    ("deadline", "drive"),
    [
        (DeadlineName.VERIFICATION, _to_verification),
        (DeadlineName.RECTIFICATION_IMMEDIATE, _to_rectification),
        (DeadlineName.RECTIFICATION_LEDGER_MAX, _to_ledger),
        (DeadlineName.EXPLANATION, _to_explanation),
        (DeadlineName.FEEDBACK, _to_feedback),
    ],
)
async def test_each_stage_deadline_reminds_then_escalates_twice(
    world: World, deadline: DeadlineName, drive: Callable[[CaseDriver], Awaitable[None]]
) -> None:
    case = await world.open()
    await drive(case)
    await world.sleep(timedelta(days=40))
    events = await eventually(lambda: _escalated(case, deadline, 2))
    mine = [(e.action, e.data["rung"]) for e in events if e.data.get("deadline") == deadline.value and "rung" in e.data]
    assert mine == [("overdue", 1), ("escalated", 2)]
    state = await case.state()
    assert state.overdue and state.escalation_rung == 2
    assert _deadline(state, deadline).state == "overdue"


async def test_timers_survive_a_worker_restart(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    mailbox: MailSink,
) -> None:
    # No workflow cache, so no sticky task queue pointing at this worker once it is gone.
    async with running_worker(time_skipping.client, settings, db, max_cached_workflows=0):
        case = await CaseDriver.open(time_skipping, offline_api, demo, db, settings)
        await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    # A new worker process knows nothing of the case: it rebuilds it from the history, timers included.
    async with running_worker(time_skipping.client, settings, db):
        await time_skipping.sleep(timedelta(days=14))
        events = await eventually(lambda: _escalated(case, DeadlineName.CALLBACK, 2), timeout=30)
    assert [e.data["rung"] for e in events if e.data.get("deadline") == "callback" and "rung" in e.data] == [1, 2]
    assert await delivered(mailbox, "supervisor@hcp.localhost", subject="第2级")
