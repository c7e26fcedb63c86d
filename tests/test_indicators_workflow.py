"""The indicators read what the real workflow writes: cases through intake, the workflow's steps and its clocks.

Three bad ratings of 市场监管局 through the API and the outbox relay, on the time-skipping server: one
rectified in time and answered 满意, one left to go overdue on its rectification until rung 2, one
appealed and upheld (不予采纳). Every figure below is counted from the timelines the workflow recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from models.case.step_inputs import AppealDecisionInput, AppealInput, RaterResponseInput
from models.case.vocabulary import RATER_ACTOR, Outcome, Stage, Verdict
from tests.support.case_driver import REVIEWER, SCJ_STAFF, CaseDriver, through_verification, to_rater_response
from tests.support.db import case_row
from tests.support.http import login
from tests.support.indicator_data import CHINA, counts, report, value
from tests.support.waiting import eventually
from tests.support.world import World
from workflows.case import CaseWorkflow


async def _reached_rung(case: CaseDriver, rung: int) -> bool:
    return any(e.data.get("rung") == rung for e in await case.events())


async def _outcome_is(world: World, case: CaseDriver, outcome: Outcome) -> bool:
    return (await case_row(world.db, case.case_id)).outcome == outcome


async def test_figures_of_cases_run_by_the_workflow(world: World) -> None:
    satisfied = await world.open(record_no="DEMO-0001")
    await to_rater_response(satisfied)
    await satisfied.do(CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=True))
    await eventually(lambda: _outcome_is(world, satisfied, Outcome.SATISFIED))

    late = await world.open(record_no="DEMO-0002")
    await through_verification(late)  # accepted, called back, verdict valid: rectification starts

    upheld = await world.open(record_no="DEMO-0004")
    await through_verification(upheld, Verdict.DISPUTED)
    await upheld.do(CaseWorkflow.file_appeal, AppealInput(actor=SCJ_STAFF, reason="误评", evidence=["监控录像"]))
    await upheld.do(CaseWorkflow.decide_appeal, AppealDecisionInput(actor=REVIEWER, upheld=True, reason="属误评"))
    await eventually(lambda: _outcome_is(world, upheld, Outcome.NOT_ADOPTED))

    # 立行立改 is 3 working days; rung 2 follows rung 1 a day later. Ten days pass for the workflows.
    await world.sleep(timedelta(days=10))
    await eventually(lambda: _reached_rung(late, 2))
    await eventually(lambda: _escalated_in_db(world, late))

    staff = await login(world.api, "scj_staff", world.demo.passwords["scj_staff"])
    today = datetime.now(CHINA).date()
    period = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    total = (await report(world.api, staff, **period))["total"]
    got = counts(total)
    # Ratings: DEMO-0001 and DEMO-0002 (DEMO-0004's was not adopted), both bad.
    assert (got["ratings"], got["bad_ratings"], got["not_adopted_ratings"]) == (2, 2, 1)
    # The demo's transactions of 市场监管局 were completed in the last hours: DEMO-0001/2/4/5/7/8; rated 0001, 0002.
    assert got["completed_records"] == 6 and value(total, "rating_rate") == pytest.approx(2 / 6)
    # Cases of adopted ratings: two, both real-name and called back.
    assert (got["cases"], got["real_name_cases"], got["called_back_cases"]) == (2, 2, 2)
    assert value(total, "callback_rate") == pytest.approx(2 / 2)
    # Both entered rectification; one rectified, in time; its rater said 满意.
    assert (got["rectification_cases"], got["rectified_cases"], got["rectified_on_time_cases"]) == (2, 1, 1)
    assert value(total, "rectification_rate") == pytest.approx(1 / 2)
    assert (got["rater_answered_cases"], got["rater_satisfied_cases"]) == (1, 1)
    # The late one is overdue now at rung 2, and reached rungs 1 and 2.
    assert got["overdue_open_cases"] == 1 and got["overdue_open_cases_rung_2"] == 1
    assert (got["escalated_cases_rung_1"], got["escalated_cases_rung_2"], got["escalated_cases_rung_3"]) == (1, 1, 0)
    # The appeal: filed, decided, upheld.
    assert (got["appealed_cases"], got["appeal_decided_cases"], got["appeal_upheld_cases"]) == (1, 1, 1)
    assert value(total, "appeal_uphold_rate") == pytest.approx(1 / 1)

    listed = await world.api.get(total["counts"]["escalated_cases_rung_2"]["drill_down"], headers=staff)
    assert [item["case_id"] for item in listed.json()["items"]] == [late.case_id]


async def _escalated_in_db(world: World, case: CaseDriver) -> bool:
    row = await case_row(world.db, case.case_id)
    return row.overdue and row.escalation_rung == 2 and row.stage == Stage.RECTIFICATION
