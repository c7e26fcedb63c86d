"""Replaying recorded histories of the main case paths against the current workflow code.

A change to CaseWorkflow that would break running cases (a new activity or timer on an existing
path, a reordered step) makes these replays fail with a nondeterminism error. See
docs/changing-the-workflow.md for how to make such a change safely with workflow.patched().

Record the current code's histories (keep the earlier ones, renamed <scenario>@v<n>.json, as long as
any case may still run that code):
    HCP_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/test_replay.py -k record
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from models.case.step_inputs import (
    AcceptInput,
    AppealDecisionInput,
    AppealInput,
    CallbackInput,
    ExtensionDecisionInput,
    ExtensionRequestInput,
    LedgerInput,
    RaterResponseInput,
    ReassignInput,
    RectificationInput,
    VerificationInput,
)
from models.case.vocabulary import RATER_ACTOR, Judgement, Verdict
from models.policy import DeadlineName
from tests.support.case_driver import (
    REVIEWER,
    RSJ_STAFF,
    SCJ_STAFF,
    SUPERVISOR,
    CaseDriver,
    through_verification,
    to_rater_response,
)
from tests.support.waiting import eventually
from tests.support.world import World
from workflows.case import CaseWorkflow

HISTORIES = Path(__file__).parent / "histories"
RECORDING = os.environ.get("HCP_RECORD_HISTORIES") == "1"


async def _satisfied(world: World) -> CaseDriver:
    case = await world.open()
    await to_rater_response(case)
    await case.do(CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=True))
    return case


async def _overdue_escalated(world: World) -> CaseDriver:
    case = await world.open()
    await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await world.sleep(timedelta(days=14))
    await to_rater_response(case, accepted=True)
    await case.do(CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=True))
    return case


async def _appeal_upheld(world: World) -> CaseDriver:
    case = await world.open()
    await through_verification(case, Verdict.DISPUTED)
    await case.do(CaseWorkflow.file_appeal, AppealInput(actor=SCJ_STAFF, reason="误评", evidence=["录像"]))
    await case.do(CaseWorkflow.decide_appeal, AppealDecisionInput(actor=REVIEWER, upheld=True, reason="证据充分"))
    return case


async def _reopened_to_the_limit(world: World) -> CaseDriver:
    case = await world.open(policy="demo")
    await to_rater_response(case)
    await case.do(CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=False))

    await eventually(lambda: case.round_is(2))
    await to_rater_response(case)
    await case.do(CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=False))
    return case


async def _reassigned_ledger_extended(world: World) -> CaseDriver:
    case = await world.open()
    await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await case.do(CaseWorkflow.reassign, ReassignInput(actor=SUPERVISOR, to_unit_id=3, reason="属人社局职责"))
    await case.do(CaseWorkflow.accept, AcceptInput(actor=RSJ_STAFF))
    await case.do(CaseWorkflow.log_callback, CallbackInput(actor=RSJ_STAFF, reached=True, note="已回访"))
    state = await case.do(
        CaseWorkflow.verify,
        VerificationInput(actor=RSJ_STAFF, verdict=Verdict.VALID, findings="属实", judgement=Judgement.REASONABLE),
    )
    assert state.ledger_latest_due is not None
    due = state.ledger_latest_due - timedelta(days=3)
    await case.do(CaseWorkflow.ledger, LedgerInput(actor=RSJ_STAFF, due_at=due, plan="系统改造"))
    await case.do(
        CaseWorkflow.request_extension,
        ExtensionRequestInput(
            actor=RSJ_STAFF,
            deadline=DeadlineName.RECTIFICATION_LEDGER_MAX,
            new_due_at=due + timedelta(days=7),
            reason="供应商延期",
        ),
    )
    await case.do(CaseWorkflow.decide_extension, ExtensionDecisionInput(actor=SUPERVISOR, approve=True))
    await case.do(CaseWorkflow.rectify, RectificationInput(actor=RSJ_STAFF, measures="系统改造完成"))
    return case


SCENARIOS: dict[str, Callable[[World], Awaitable[CaseDriver]]] = {
    "satisfied": _satisfied,
    "overdue_escalated": _overdue_escalated,
    "appeal_upheld": _appeal_upheld,
    "reopened_to_the_limit": _reopened_to_the_limit,
    "reassigned_ledger_extended": _reassigned_ledger_extended,
}


@pytest.mark.skipif(not RECORDING, reason="set HCP_RECORD_HISTORIES=1 to re-record the histories")
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_record_history(world: World, scenario: str) -> None:
    case = await SCENARIOS[scenario](world)
    # A case whose rounds continued as new runs has one history per run: the last is <scenario>.json,
    # the ones before it <scenario>.run<n>.json, found by walking back from the last.
    runs = []
    run_id: str | None = None
    while True:
        handle = world.env.client.get_workflow_handle(case.handle.id, run_id=run_id)
        history = await handle.fetch_history()
        runs.append(history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            break
    HISTORIES.mkdir(exist_ok=True)
    for number, history in enumerate(reversed(runs), start=1):
        name = scenario if number == len(runs) else f"{scenario}.run{number}"
        (HISTORIES / f"{name}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


async def test_recorded_histories_replay_on_the_current_code() -> None:
    # <scenario>.json is the current code's recording; <scenario>@v<n>.json were recorded by earlier code
    # that open cases may still run, and must keep replaying.
    files = sorted(HISTORIES.glob("*.json"))
    current = {f.stem for f in files if "@" not in f.stem and ".run" not in f.stem}
    assert current == set(SCENARIOS), "a scenario has no recorded history on the current code; record it"
    assert any("@" in f.stem for f in files), "the histories of earlier workflow code are gone"
    # Rounds are runs: the reopened case's first round is a run of its own that continued as new.
    assert (HISTORIES / "reopened_to_the_limit.run1.json").exists()
    replayer = Replayer(workflows=[CaseWorkflow], data_converter=pydantic_data_converter)
    for path in files:
        history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
