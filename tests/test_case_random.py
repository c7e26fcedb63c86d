"""Random valid and invalid action sequences against real case workflows, checking invariants.

Each episode opens a case, fires random actions by random people (right and wrong roles, right and
wrong stages) with random waits between them, then drives the case to its end. Invariants:
  - the case ends closed or not adopted;
  - every stage change in the timeline is an allowed transition (no stage skipped);
  - every deadline that went overdue was escalated (a notice was sent for rung 1);
  - a refused action leaves no trace: timeline event numbers are contiguous;
  - the case row in the database agrees with the workflow's final state.
The seed is printed on failure; rerun one with HCP_RANDOM_SEED=<seed>. With CI set, the seed is fixed.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import BaseModel
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.case import step_inputs as act
from models.case.records import CaseEvent
from models.case.vocabulary import (
    RATER_ACTOR,
    TERMINAL_STAGES,
    TRANSITIONS,
    Actor,
    ErrorType,
    Judgement,
    Stage,
    Verdict,
)
from models.db import Database
from models.policy import DeadlineName
from runtime.mail_sink import MailSink
from runtime.seed import DemoCredentials
from tests.support.case_driver import (
    REVIEWER,
    RSJ_STAFF,
    SCJ_STAFF,
    SUPERVISOR,
    CaseDriver,
    judgement_for,
    timeline_notices,
)
from tests.support.db import case_row
from tests.support.services import running_worker
from tests.support.waiting import eventually
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

EPISODES = 6
CI_SEED = 20261121
STEPS = 30
PEOPLE = [SCJ_STAFF, RSJ_STAFF, SUPERVISOR, REVIEWER, RATER_ACTOR]
REFUSALS = {ErrorType.WRONG_STAGE, ErrorType.ALREADY_TAKEN, ErrorType.NOT_ALLOWED, ErrorType.INVALID_INPUT}


def _verification(actor: Actor, verdict: Verdict) -> act.VerificationInput:
    return act.VerificationInput(actor=actor, verdict=verdict, findings="核实", judgement=judgement_for(verdict))


def _random_action(rng: random.Random, state: Any) -> tuple[Any, BaseModel]:
    """One action with plausible fields, by a random person: often not the right one."""
    actor: Actor = rng.choice(PEOPLE)
    later = (state.deadlines[-1].due_at if state.deadlines else state.ledger_latest_due) or None
    running = [d.name for d in state.deadlines if d.state in ("running", "overdue")]
    deadline = rng.choice(running) if running else DeadlineName.VERIFICATION
    due = (later or datetime.now(UTC)) + timedelta(days=rng.randint(1, 20))
    choices: list[Callable[[], tuple[Any, BaseModel]]] = [
        lambda: (CaseWorkflow.accept, act.AcceptInput(actor=actor)),
        lambda: (CaseWorkflow.log_callback, act.CallbackInput(actor=actor, reached=rng.random() < 0.7, note="回访")),
        lambda: (CaseWorkflow.verify, _verification(actor, rng.choice(list(Verdict)))),
        lambda: (CaseWorkflow.ledger, act.LedgerInput(actor=actor, due_at=due, plan="台账")),
        lambda: (CaseWorkflow.rectify, act.RectificationInput(actor=actor, measures="整改")),
        lambda: (CaseWorkflow.explain, act.ExplanationInput(actor=actor, explanation="说明")),
        lambda: (CaseWorkflow.file_appeal, act.AppealInput(actor=actor, reason="误评", evidence=["证据"])),
        lambda: (
            CaseWorkflow.decide_appeal,
            act.AppealDecisionInput(actor=actor, upheld=rng.random() < 0.5, reason="复核"),
        ),
        lambda: (CaseWorkflow.give_feedback, act.FeedbackInput(actor=actor, message="反馈")),
        lambda: (CaseWorkflow.rater_respond, act.RaterResponseInput(actor=actor, satisfied=rng.random() < 0.5)),
        lambda: (
            CaseWorkflow.request_extension,
            act.ExtensionRequestInput(actor=actor, deadline=deadline, new_due_at=due, reason="延期"),
        ),
        lambda: (CaseWorkflow.decide_extension, act.ExtensionDecisionInput(actor=actor, approve=rng.random() < 0.5)),
        lambda: (
            CaseWorkflow.extend_deadline,
            act.ExtendInput(actor=actor, deadline=deadline, new_due_at=due, reason="延期"),
        ),
        lambda: (CaseWorkflow.remind, act.RemindInput(actor=actor, message="提醒")),
        lambda: (CaseWorkflow.instruct, act.InstructionInput(actor=actor, instruction="批示")),
        lambda: (
            CaseWorkflow.reassign,
            act.ReassignInput(actor=actor, to_unit_id=rng.choice([2, 3]), reason="改派"),
        ),
    ]
    return rng.choice(choices)()


def _staff_of(unit_id: int) -> Actor:
    return SCJ_STAFF if unit_id == 2 else RSJ_STAFF


async def _finish(case: CaseDriver, rng: random.Random, anonymous: bool) -> Any:
    """Take the case to its end by the right people, whatever stage it is in."""
    for _ in range(60):
        state = await case.state()
        if state.stage in TERMINAL_STAGES:
            return state
        staff = _staff_of(state.unit_id)
        step: tuple[Any, BaseModel] | None = {
            Stage.ASSIGNED: (CaseWorkflow.accept, act.AcceptInput(actor=staff)),
            Stage.RECTIFICATION: (CaseWorkflow.rectify, act.RectificationInput(actor=staff, measures="整改")),
            Stage.EXPLANATION: (CaseWorkflow.explain, act.ExplanationInput(actor=staff, explanation="说明")),
            Stage.APPEAL_FILING: (
                CaseWorkflow.file_appeal,
                act.AppealInput(actor=staff, reason="误评", evidence=["证据"]),
            ),
            Stage.APPEAL_REVIEW: (
                CaseWorkflow.decide_appeal,
                act.AppealDecisionInput(actor=REVIEWER, upheld=rng.random() < 0.5, reason="复核"),
            ),
            Stage.FEEDBACK: (CaseWorkflow.give_feedback, act.FeedbackInput(actor=staff, message="反馈")),
            Stage.RATER_RESPONSE: (
                CaseWorkflow.rater_respond,
                act.RaterResponseInput(actor=RATER_ACTOR, satisfied=True),
            ),
        }.get(state.stage)
        if state.stage == Stage.VERIFICATION:
            if not state.callback_done and not anonymous:
                step = (CaseWorkflow.log_callback, act.CallbackInput(actor=staff, reached=True, note="回访"))
            else:
                verification = act.VerificationInput(
                    actor=staff, verdict=Verdict.VALID, findings="核实", judgement=Judgement.REASONABLE
                )
                step = (CaseWorkflow.verify, verification)
        assert step is not None
        try:
            await case.do(*step)
        except WorkflowUpdateFailedError:
            await case.env.sleep(timedelta(seconds=5))  # e.g. feedback already written and being sent
    raise AssertionError(f"case did not end: {await case.state()}")


@pytest_asyncio.fixture
async def worker(
    time_skipping: WorkflowEnvironment, db: Database, settings: Settings, mailbox: MailSink
) -> AsyncIterator[None]:
    async with running_worker(time_skipping.client, settings, db):
        yield


async def test_random_action_sequences_keep_the_invariants(
    time_skipping: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    worker: None,
) -> None:
    # CI runs one fixed seed so a red build can be replayed exactly; local runs explore new seeds.
    default = CI_SEED if os.environ.get("CI") else random.SystemRandom().randrange(1_000_000)
    base_seed = int(os.environ.get("HCP_RANDOM_SEED", default))
    records = ["DEMO-0001", "DEMO-0002", "DEMO-0004", "DEMO-0005", "DEMO-0007", "DEMO-0008"]
    for episode in range(EPISODES):
        seed = base_seed + episode
        rng = random.Random(seed)
        try:
            await _episode(rng, time_skipping, offline_api, demo, db, settings, records[episode])
        except AssertionError as exc:
            raise AssertionError(f"episode failed; rerun with HCP_RANDOM_SEED={seed}: {exc}") from exc


async def _episode(
    rng: random.Random,
    env: WorkflowEnvironment,
    api: httpx.AsyncClient,
    demo: DemoCredentials,
    db: Database,
    settings: Settings,
    record_no: str,
) -> None:
    anonymous = rng.random() < 0.25
    rating: dict[str, Any] = {"record_no": record_no}
    if anonymous:
        rating.update(real_name=False, rater=None)
    case = await CaseDriver.open(env, api, demo, db, settings, **rating)
    accepted = refused = 0
    for _ in range(STEPS):
        if rng.random() < 0.25:
            await env.sleep(timedelta(hours=rng.choice([1, 6, 30, 80, 200])))
            continue
        update, inp = _random_action(rng, await case.state())
        try:
            await case.do(update, inp)
            accepted += 1
        except WorkflowUpdateFailedError as exc:
            assert isinstance(exc.cause, ApplicationError) and exc.cause.type in REFUSALS, exc.cause
            refused += 1
    final = await _finish(case, rng, anonymous)
    result = await case.handle.result()

    assert result.stage in TERMINAL_STAGES and final.stage == result.stage
    events = await eventually(lambda: _settled(case, result.stage))

    # No stage skipped: each change of stage in the timeline is an allowed transition.
    stages = [e.stage for e in events]
    for before, after in zip(stages, stages[1:], strict=False):
        assert after == before or after in TRANSITIONS[before], f"{before} → {after}"
    # Refused actions left no trace: event numbers run 1..n without a gap.
    numbered = [e for e in events if e.event_key[:1].isdigit()]  # notice failures are not workflow events
    assert [int(e.event_key.split("-", 1)[0]) for e in numbered] == list(range(1, len(numbered) + 1))
    # Every overdue deadline was escalated: each rung-1 event is followed by an escalation notice.
    overdue = [e for e in events if e.action == "overdue"]
    notices = [n for n in timeline_notices(events) if n["kind"] == "escalation"]
    assert len(notices) >= len(overdue)
    # The read model agrees with the workflow.
    row = await case_row(db, case.case_id)
    assert (row.stage, row.round, row.unit_id, row.outcome) == (
        result.stage,
        result.round,
        result.unit_id,
        result.outcome,
    )
    assert row.closed_at is not None
    assert accepted + refused > 0


async def _settled(case: CaseDriver, stage: Stage) -> list[CaseEvent] | None:
    events = await case.events()
    return (
        events
        if events and events[-1].stage == stage and events[-1].action in ("closed", "notified", "appeal_upheld")
        else None
    )
