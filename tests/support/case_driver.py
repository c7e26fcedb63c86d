"""Drive a case workflow directly (as the API would) on a Temporal test environment."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel
from sqlmodel import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.case.records import CaseEvent
from models.case.step_inputs import AcceptInput, CallbackInput, FeedbackInput, RectificationInput, VerificationInput
from models.case.vocabulary import Actor, CaseSnapshot, Judgement, Stage, Verdict, workflow_id_for_rating
from models.db import Database
from models.organisation import Region
from models.roles import Role
from runtime.relay import OutboxRelay
from runtime.seed import DemoCredentials
from tests.support.db import case_events
from tests.support.http import bad_rating
from tests.support.waiting import eventually
from workflows.case import CaseWorkflow

# The demo dataset's people: unit 1 is the management office above units 2 (市场监管局) and 3 (人社局).
SCJ_STAFF = Actor(user_id=4, role=Role.UNIT_STAFF, unit_id=2)
RSJ_STAFF = Actor(user_id=5, role=Role.UNIT_STAFF, unit_id=3)
SUPERVISOR = Actor(user_id=2, role=Role.SUPERVISOR, unit_id=1)
REVIEWER = Actor(user_id=3, role=Role.REVIEWER, unit_id=1)


def timeline_notices(events: list[CaseEvent]) -> list[dict[str, Any]]:
    """The notices of a timeline: those written with an event, and the "notified" events of older cases."""
    found: list[dict[str, Any]] = []
    for event in events:
        if event.action == "notified":
            found.append(event.data)
        found.extend(event.data.get("notices", []))
    return found


async def use_policy(db: Database, code: str) -> None:
    """Make new cases of the demo region run under another profile."""
    async with db.session() as session:
        region = (await session.exec(select(Region))).one()
        region.policy_code = code
        session.add(region)
        await session.commit()


class CaseDriver:
    def __init__(
        self, env: WorkflowEnvironment, db: Database, handle: WorkflowHandle[CaseWorkflow, CaseSnapshot], case_id: int
    ):
        self.env, self.db, self.handle, self.case_id = env, db, handle, case_id

    @classmethod
    async def open(
        cls,
        env: WorkflowEnvironment,
        api: httpx.AsyncClient,
        demo: DemoCredentials,
        db: Database,
        settings: Settings,
        **rating: Any,
    ) -> CaseDriver:
        """Submit a bad rating (Temporal unreachable from the API), then let the outbox relay start it on env."""
        response = await api.post("/api/v1/ratings", json=bad_rating(**rating), headers={"X-API-Key": demo.api_key})
        assert response.status_code == 201, response.text
        body = response.json()
        assert await OutboxRelay(db, env.client, settings).drain_once() == 1
        workflow_id = workflow_id_for_rating(body["rating_id"], settings.workflow_id_prefix)
        handle = env.client.get_workflow_handle_for(CaseWorkflow.run, workflow_id)
        return cls(env, db, handle, body["case_id"])

    async def do(self, update: Any, inp: BaseModel) -> CaseSnapshot:
        return await self.handle.execute_update(update, inp)

    async def rejected(self, update: Any, inp: BaseModel) -> ApplicationError:
        """Send an update that must be refused; return the validator's error."""
        try:
            await self.handle.execute_update(update, inp)
        except WorkflowUpdateFailedError as exc:
            assert isinstance(exc.cause, ApplicationError), exc.cause
            return exc.cause
        raise AssertionError(f"{update.__name__} was accepted but should have been refused")

    async def state(self) -> CaseSnapshot:
        return await self.handle.query(CaseWorkflow.state)

    async def events(self) -> list[CaseEvent]:
        return await case_events(self.db, self.case_id)

    async def actions(self) -> list[str]:
        return [e.action for e in await self.events()]

    async def notices(self) -> list[dict[str, Any]]:
        """Every notice the timeline records (kind, audience, recipients), in order."""
        return timeline_notices(await self.events())

    async def stage_is(self, stage: Stage) -> bool:
        return (await self.state()).stage == stage

    async def round_is(self, round_: int) -> bool:
        return (await self.state()).round == round_


async def through_verification(case: CaseDriver, verdict: Verdict = Verdict.VALID, accepted: bool = False) -> None:
    """The unit accepts (unless already done), calls back and gives its verdict, with the judgement it needs."""
    if not accepted:
        await case.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await case.do(CaseWorkflow.log_callback, CallbackInput(actor=SCJ_STAFF, reached=True, note="已致电"))
    verification = VerificationInput(
        actor=SCJ_STAFF, verdict=verdict, findings="核实情况", judgement=judgement_for(verdict)
    )
    await case.do(CaseWorkflow.verify, verification)


def judgement_for(verdict: Verdict) -> Judgement:
    """A judgement of the review that agrees with the verdict: rectified reviews are reasonable."""
    return Judgement.REASONABLE if verdict == Verdict.VALID else Judgement.UNREASONABLE


async def to_rater_response(case: CaseDriver, accepted: bool = False) -> None:
    """Through verification, rectification and feedback, until the case waits for the rater."""
    await through_verification(case, accepted=accepted)
    await case.do(CaseWorkflow.rectify, RectificationInput(actor=SCJ_STAFF, measures="增开窗口"))
    await case.do(CaseWorkflow.give_feedback, FeedbackInput(actor=SCJ_STAFF, message="已增开窗口"))
    await eventually(lambda: case.stage_is(Stage.RATER_RESPONSE))
