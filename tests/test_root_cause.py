"""Root-cause rectification (根源整改) on the time-skipping server, through the API, counting every effect.

Five cases of one unit — three raters real-name with an email (one of them twice: the same person gets
one notice per linked case), two anonymous — go into one rectification. The unit reports progress and a
result, the supervisor returns it, the unit reports again, two supervisors' clicks accept it at once:
one is taken, the other is a 409; exactly three result emails and three SMS go out, each case's
timeline records the result once, and every step is audited once. The deadline reminds and escalates;
a case already in an open rectification is refused, and free again once it is withdrawn.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select
from temporalio.client import WorkflowHistory, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from models.case.records import Case
from models.case.vocabulary import Stage
from models.db import Database
from models.notifications import Notification
from models.root_cause import RootCauseRectification
from models.root_cause_io import ResultInput, ReturnInput, RootCauseStage, WithdrawalInput
from runtime.temporal import TemporalConnection
from tests.pii_scan import find_in_history
from tests.pii_watch import PII_NEEDLES
from tests.support.case_driver import SCJ_STAFF, SUPERVISOR
from tests.support.http import RATER, login
from tests.support.root_cause import audit_actions, case_actions, open_links, root_cause_actions
from tests.support.services import api_client
from tests.support.waiting import delivered, eventually
from tests.support.world import World
from workflows.root_cause import RootCauseWorkflow

HISTORIES = Path(__file__).parent / "histories" / "root_cause"
RECORDING = os.environ.get("HCP_RECORD_HISTORIES") == "1"
PATH = "/api/v1/root-cause-rectifications"
SECOND_RATER = {"name": "李四", "phone": "13800001234", "email": "zhangsan@example.com"}
# 市场监管局's records in the demo data; the first, second and fourth raters are real-name (the first twice).
RECORDS = ["DEMO-0001", "DEMO-0002", "DEMO-0004", "DEMO-0005", "DEMO-0008"]
RESULT = "已将企业登记改为全程网办，窗口增至三个，并推行预约办理"


async def _rows(db: Database, model: type, **where: object) -> list[Any]:
    async with db.session() as session:
        query: Any = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list((await session.exec(query)).all())


async def _connected(world: World) -> httpx.AsyncClient:
    """The API wired to the time-skipping server, so rectifications start there."""
    return api_client(world.settings, world.db, TemporalConnection(world.settings, client=world.env.client))


async def _open_cases(world: World) -> list[int]:
    raters = [RATER, SECOND_RATER, None, RATER, None]
    cases = []
    for record_no, rater in zip(RECORDS, raters, strict=True):
        contact = {"rater": dict(rater), "real_name": True} if rater else {"rater": None, "real_name": False}
        cases.append((await world.open(record_no=record_no, **contact)).case_id)
    return cases


async def _create(
    api: httpx.AsyncClient, headers: dict[str, str], case_ids: list[int], **extra: object
) -> httpx.Response:
    body = {
        "unit_id": 2,
        "title": "企业登记窗口排队时间长",
        "problem": "多名评价人反映排队两小时以上",
        "case_ids": case_ids,
    }
    return await api.post(PATH, json={**body, **extra}, headers=headers)


async def _started(db: Database, rectification_id: int) -> bool:
    rows = await _rows(db, RootCauseRectification, id=rectification_id)
    return bool(rows and rows[0].workflow_started_at is not None)


async def test_rectification_over_five_cases_tells_the_three_raters_once(world: World) -> None:
    cases = await _open_cases(world)
    async with await _connected(world) as api:
        staff = await login(api, "scj_staff", world.demo.passwords["scj_staff"])
        supervisor = await login(api, "supervisor", world.demo.passwords["supervisor"])
        created = await _create(api, supervisor, cases, concentration="unit:2")
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        assert created.json()["case_count"] == 5
        await eventually(lambda: _started(world.db, rid))
        # The unit is told it has a rectification.
        await delivered(world.mailbox, "scj@hcp.localhost", subject="【根源整改】")

        # A case already in an open rectification cannot join another: 409, and nothing is written.
        refused = await _create(api, supervisor, [cases[0]])
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"]["code"] == "case_in_open_root_cause"
        assert f"#{rid}" in refused.json()["detail"]["message"]
        assert len(await _rows(world.db, RootCauseRectification)) == 1

        step = f"{PATH}/{rid}"
        assert (await api.post(f"{step}/progress", json={"note": "已调研排队原因"}, headers=staff)).status_code == 200
        # The supervisor cannot accept what has not been submitted, and the unit's staff cannot accept at all.
        early = await api.post(f"{step}/acceptance", json={}, headers=supervisor)
        assert early.status_code == 409 and early.json()["detail"]["code"] == "wrong_stage"
        assert (await api.post(f"{step}/acceptance", json={}, headers=staff)).status_code == 403
        submitted = await api.post(f"{step}/result", json={"result": "增开一个窗口"}, headers=staff)
        assert submitted.status_code == 200 and submitted.json()["stage"] == "result_submitted"
        returned = await api.post(f"{step}/return", json={"reason": "未解决根本问题"}, headers=supervisor)
        assert returned.status_code == 200 and returned.json()["stage"] == "rectifying"
        again = await api.post(f"{step}/result", json={"result": RESULT, "measures": ["全程网办"]}, headers=staff)
        assert again.status_code == 200, again.text

        # Two clicks on 验收通过 at once: one takes effect, the other is told it was already taken.
        answers = await asyncio.gather(*(api.post(f"{step}/acceptance", json={}, headers=supervisor) for _ in range(2)))
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        conflict = next(a for a in answers if a.status_code == 409)
        assert conflict.json()["detail"]["code"] == "already_taken"
        assert "已验收" in conflict.json()["detail"]["message"]

    # Exactly three result emails (the first rater, twice: two cases; the second once), and three SMS.
    await delivered(world.mailbox, RATER["email"], subject="已完成整改", count=2)
    await delivered(world.mailbox, SECOND_RATER["email"], subject="已完成整改")
    await asyncio.sleep(1.0)  # anything more would have been sent by now
    results = [m for m in world.mailbox.messages if "已完成整改" in str(m["Subject"])]
    assert len(results) == 3
    assert all(RESULT in m.get_body(("plain",)).get_content() for m in results)  # type: ignore[union-attr]
    texts = [p.read_text(encoding="utf-8") for p in world.settings.sms_dir.glob("*.txt")]
    assert len([t for t in texts if "根源整改" in t]) == 3
    notices = await _rows(world.db, Notification, kind="root_cause_result")
    assert sorted((n.case_id, n.channel.value) for n in notices) == sorted(
        [(c, ch) for c in (cases[0], cases[1], cases[3]) for ch in ("email", "sms")]
    )

    # Each linked case's timeline records the result once; the cases keep running on their own.
    for case_id in cases:
        recorded = await case_actions(world.db, case_id, "root_cause_result")
        assert len(recorded) == 1, case_id
        assert recorded[0].data["message"] == RESULT
        assert (await _rows(world.db, Case, id=case_id))[0].stage == Stage.ASSIGNED
    assert await open_links(world.db) == []  # accepted: the cases are free to join another

    actions = await root_cause_actions(world.db, rid)
    assert actions == ["opened", "progress", "result_submitted", "returned", "result_submitted", "accepted"]
    assert await audit_actions(world.db) == {
        "root_cause.open": 1,
        "root_cause.progress": 1,
        "root_cause.result_submitted": 2,
        "root_cause.returned": 1,
        "root_cause.accepted": 1,
    }

    # No rater PII in the rectification's history (the title is there: the scan would see a name).
    row = (await _rows(world.db, RootCauseRectification, id=rid))[0]
    history = await world.env.client.get_workflow_handle(row.workflow_id).fetch_history()
    assert find_in_history(history, PII_NEEDLES) == []
    assert find_in_history(history, ["企业登记窗口排队时间长", RESULT]) == [RESULT]
    if RECORDING:
        HISTORIES.mkdir(parents=True, exist_ok=True)
        (HISTORIES / "accepted.json").write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


async def test_the_deadline_reminds_escalates_and_a_withdrawal_frees_the_case(world: World) -> None:
    case = await world.open(record_no="DEMO-0001")
    async with await _connected(world) as api:
        supervisor = await login(api, "supervisor", world.demo.passwords["supervisor"])
        created = await _create(api, supervisor, [case.case_id], working_days=10)
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        await eventually(lambda: _started(world.db, rid))
        row = (await _rows(world.db, RootCauseRectification, id=rid))[0]
        assert row.due_at is not None and row.within == "10wd"
        # Past both reminders (3 days and 1 day before), the deadline, and rung 2 one day later.
        await world.sleep(row.due_at - datetime.now(row.due_at.tzinfo) + timedelta(days=1, hours=1))
        await eventually(lambda: _has(world.db, rid, "escalated"))
        assert await root_cause_actions(world.db, rid) == ["opened", "reminded", "reminded", "overdue", "escalated"]
        await delivered(world.mailbox, "scj@hcp.localhost", subject="【提醒】根源整改", count=2)
        await delivered(world.mailbox, "supervisor@hcp.localhost", subject="【督办·第1级】根源整改")
        await delivered(world.mailbox, "supervisor@hcp.localhost", subject="【督办·第2级】根源整改")
        listed = (await api.get(PATH, params={"stage": "rectifying"}, headers=supervisor)).json()
        assert [(i["id"], i["overdue"], i["escalation_rung"]) for i in listed["items"]] == [(rid, True, 2)]

        # Workflow time is now weeks past the wall clock, which the API's step expiry reads: the steps go
        # to the workflow directly, as tests/test_case_lifecycle.py drives cases after a sleep.
        handle = world.env.client.get_workflow_handle_for(RootCauseWorkflow.run, row.workflow_id)
        await handle.execute_update(RootCauseWorkflow.submit_result, ResultInput(actor=SCJ_STAFF, result="已整改"))
        # The deadline has passed: the result cannot be returned without a new one.
        with pytest.raises(WorkflowUpdateFailedError) as late:
            await handle.execute_update(RootCauseWorkflow.return_result, ReturnInput(actor=SUPERVISOR, reason="不彻底"))
        assert isinstance(late.value.cause, ApplicationError) and "due_at" in late.value.cause.message
        withdrawn = await handle.execute_update(
            RootCauseWorkflow.withdraw, WithdrawalInput(actor=SUPERVISOR, reason="并入全市专项整治")
        )
        assert withdrawn.stage == RootCauseStage.WITHDRAWN
        await delivered(world.mailbox, "scj@hcp.localhost", subject="【已撤销】")
        assert await open_links(world.db) == []
        # Withdrawn: the case may join another rectification; no rater was told anything.
        assert (await _create(api, supervisor, [case.case_id])).status_code == 201
        assert await case_actions(world.db, case.case_id, "root_cause_result") == []
    assert [m for m in world.mailbox.to(RATER["email"]) if "整改" in str(m["Subject"])] == []


async def _has(db: Database, rectification_id: int, action: str) -> bool:
    return action in await root_cause_actions(db, rectification_id)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_refusals_before_anything_is_written(world: World) -> None:
    case = await world.open(record_no="DEMO-0001")
    other = await world.open(record_no="DEMO-0003")  # 人社局's: also under the supervisor
    async with await _connected(world) as api:
        supervisor = await login(api, "supervisor", world.demo.passwords["supervisor"])
        staff = await login(api, "scj_staff", world.demo.passwords["scj_staff"])
        assert (await _create(api, staff, [case.case_id])).status_code == 403
        unknown = await _create(api, supervisor, [case.case_id, 999])
        assert unknown.status_code == 422 and unknown.json()["detail"]["field"] == "case_ids"
        assert "999" in unknown.json()["detail"]["message"]
        too_long = await _create(api, supervisor, [case.case_id, other.case_id], working_days=61)
        assert too_long.status_code == 422 and too_long.json()["detail"]["field"] == "working_days"
        assert "60" in too_long.json()["detail"]["message"] and "61" in too_long.json()["detail"]["message"]
        no_unit = await _create(api, supervisor, [case.case_id], unit_id=99)
        assert no_unit.status_code == 422 and no_unit.json()["detail"]["field"] == "unit_id"
    assert await _rows(world.db, RootCauseRectification) == []
    assert await audit_actions(world.db) == {}


async def test_recorded_root_cause_histories_replay_on_the_current_code() -> None:
    files = sorted(HISTORIES.glob("*.json"))
    assert files, "no recorded root-cause history: run with HCP_RECORD_HISTORIES=1"
    replayer = Replayer(workflows=[RootCauseWorkflow], data_converter=pydantic_data_converter)
    for path in files:
        history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
