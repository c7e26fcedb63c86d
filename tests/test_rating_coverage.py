"""What a rating covers: the stage of service (受理/办理/办结) and bundles (一次办多件, 一件事), rated once.

Through the API on SQLite and PostgreSQL; the visit bundle's case runs on the time-skipping server with
the real worker, so its effects are counted end to end: rating rows, cases, outbox rows, workflows, mail.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlmodel import col, select
from temporalio.service import RPCError, RPCStatusCode

from models.case.records import Case
from models.case.step_inputs import RemindInput
from models.case.vocabulary import workflow_id_for_rating
from models.db import Database
from models.notifications import NoticeStatus, Notification
from models.outbox import OutboxEntry
from models.ratings import Rating
from models.suspicion.records import RatingFingerprint
from models.upstream import UpstreamPush
from runtime.relay import OutboxRelay
from runtime.seed import DemoCredentials
from tests.support.bundles import ratings, record_nos_of, register, theme, visit
from tests.support.case_driver import SUPERVISOR, CaseDriver
from tests.support.http import bad_rating, login
from tests.support.intake import count, source_key
from tests.support.pages import page_login
from tests.support.waiting import delivered, eventually
from tests.support.world import World
from workflows.case import CaseWorkflow

RATE = "/api/v1/ratings"


def demo_key(demo: DemoCredentials) -> dict[str, str]:
    return {"X-API-Key": demo.api_key}


def good(record_no: str, **change: object) -> dict[str, object]:
    return {"record_no": record_no, "level": "satisfied", "channel": "hall_tablet", **change}


async def test_a_source_that_rates_stages_rates_each_stage_and_each_bad_one_opens_its_own_case(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    # The demo hall rates stages (policy/sources/demo-hall.toml: stages = true, codes 1 受理, 2 办理, 3 办结).
    acceptance = await offline_api.post(RATE, json=bad_rating("DEMO-0001", stage="acceptance"), headers=demo_key(demo))
    handling = await offline_api.post(RATE, json=bad_rating("DEMO-0001", stage_code="2"), headers=demo_key(demo))
    completion = await offline_api.post(RATE, json=good("DEMO-0001", stage_code=3), headers=demo_key(demo))
    assert [r.status_code for r in (acceptance, handling, completion)] == [201, 201, 201], handling.text
    assert acceptance.json()["case_id"] != handling.json()["case_id"] and completion.json()["case_id"] is None
    rows = await ratings(db)
    assert [(r.stage.value, r.is_bad, r.lead_rating_id) for r in rows] == [
        ("acceptance", True, None),
        ("handling", True, None),
        ("completion", False, None),
    ]
    assert await count(db, Case) == 2 and await count(db, OutboxEntry) == 2

    # The same stage again is the target's one rating of that stage.
    again = await offline_api.post(RATE, json=good("DEMO-0001", stage="handling"), headers=demo_key(demo))
    assert again.status_code == 409
    assert (again.json()["detail"]["code"], again.json()["detail"]["field"]) == ("already_rated", "stage")
    assert "办理环节" in again.json()["detail"]["message"] and "追评请设 follow_up" in again.json()["detail"]["message"]

    shown = (await offline_api.get(f"{RATE}/{rows[0].id}", headers=demo_key(demo))).json()
    assert (shown["stage"], shown["lead_rating_id"], shown["covered"]) == ("acceptance", None, [])
    # The unit's case page says which stage the rater judged.
    await page_login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    page = await offline_api.get(f"/cases/{acceptance.json()['case_id']}")
    assert page.status_code == 200 and "<dt>评价环节</dt><dd>受理</dd>" in page.text


async def test_a_stage_from_a_source_that_does_not_rate_stages_is_refused_naming_field_value_and_source(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    national = await source_key(offline_api, demo, "national-platform")
    refused = await offline_api.post(RATE, json=good("DEMO-0002", stage="acceptance"), headers=national)
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert (detail["code"], detail["field"]) == ("stage_not_rated", "stage")
    assert "national-platform" in detail["message"] and "受理" in detail["message"]
    coded = await offline_api.post(RATE, json=good("DEMO-0002", stage_code="1"), headers=national)
    assert (coded.status_code, coded.json()["detail"]["code"], coded.json()["detail"]["field"]) == (
        422,
        "no_code_table",
        "stage_code",
    )
    unknown = await offline_api.post(RATE, json=good("DEMO-0002", stage_code="9"), headers=demo_key(demo))
    assert (unknown.status_code, unknown.json()["detail"]["code"]) == (422, "unknown_code")
    assert "9" in unknown.json()["detail"]["message"] and "demo-hall" in unknown.json()["detail"]["message"]
    both = await offline_api.post(
        RATE, json=good("DEMO-0002", stage="handling", stage_code="2"), headers=demo_key(demo)
    )
    assert (both.status_code, both.json()["detail"]["code"]) == (422, "both_given")
    assert await count(db, Rating) == 0

    # The whole transaction, said or not, is what every source rates.
    whole = await offline_api.post(RATE, json=good("DEMO-0002", stage="whole"), headers=national)
    assert whole.status_code == 201, whole.text


async def test_whole_and_stage_ratings_of_one_target_do_not_mix(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    key = demo_key(demo)
    assert (await offline_api.post(RATE, json=good("DEMO-0001"), headers=key)).status_code == 201
    after_whole = await offline_api.post(RATE, json=good("DEMO-0001", stage="acceptance"), headers=key)
    assert after_whole.status_code == 409
    detail = after_whole.json()["detail"]
    assert (detail["code"], detail["field"]) == ("stage_conflict", "stage")
    assert "DEMO-0001" in detail["message"] and "整体评价" in detail["message"]

    assert (await offline_api.post(RATE, json=good("DEMO-0004", stage="completion"), headers=key)).status_code == 201
    after_stage = await offline_api.post(RATE, json=good("DEMO-0004"), headers=key)
    assert after_stage.status_code == 409 and after_stage.json()["detail"]["code"] == "stage_conflict"
    assert "办结" in after_stage.json()["detail"]["message"]

    # Another target of the same record is rated on its own terms.
    staff = await offline_api.post(RATE, json=good("DEMO-0001", target="staff", stage="handling"), headers=key)
    assert staff.status_code == 201, staff.text
    assert await count(db, Rating) == 3


async def test_a_visit_of_three_records_rated_once_writes_three_ratings_and_one_case(world: World) -> None:
    api, demo, db = world.api, world.demo, world.db
    numbers = await visit(api, demo, "V-0001")
    answer = await api.post(RATE, json=bad_rating(numbers[0]), headers=demo_key(demo))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert [c["record_no"] for c in body["covered"]] == numbers[1:]

    rows = await ratings(db)
    assert await record_nos_of(db, rows) == numbers
    lead = rows[0]
    assert lead.id == body["rating_id"] and lead.lead_rating_id is None
    assert [r.lead_rating_id for r in rows[1:]] == [lead.id, lead.id]
    assert all(r.is_bad for r in rows)  # each covered record counts as rated (bad) in the statistics
    assert await count(db, Case) == 1 and await count(db, OutboxEntry) == 1
    assert await count(db, UpstreamPush) == 3  # the platform gets each record's rating
    assert await count(db, RatingFingerprint) == 1  # one act of rating for the suspicion detectors

    # One workflow, started from the one outbox row; none for a copy.
    assert await OutboxRelay(db, world.env.client, world.settings).drain_once() == 1
    prefix = world.settings.workflow_id_prefix
    handle = world.env.client.get_workflow_handle_for(CaseWorkflow.run, workflow_id_for_rating(lead.id or 0, prefix))
    await handle.describe()
    for copy in rows[1:]:
        with pytest.raises(RPCError) as missing:
            await world.env.client.get_workflow_handle(workflow_id_for_rating(copy.id or 0, prefix)).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND

    # A notice of the case reaches the unit once, not once per record.
    case = CaseDriver(world.env, db, handle, body["case_id"])
    await case.do(CaseWorkflow.remind, RemindInput(actor=SUPERVISOR, message="一次办多件的差评，请尽快核实"))
    await delivered(world.mailbox, "scj@hcp.localhost")
    await eventually(lambda: _all_sent(db))
    assert await count(db, Notification) == 1 and len(world.mailbox.to("scj@hcp.localhost")) == 1

    # The case (API and page) names every record the rating covers; a copy points at its lead and its case.
    staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
    detail = (await api.get(f"/api/v1/cases/{body['case_id']}", headers=staff)).json()
    assert [r["record_no"] for r in detail["covered_records"]] == numbers[1:]
    assert detail["bundle_kind"] == "visit" and detail["record_no"] == numbers[0]
    copy_read = (await api.get(f"{RATE}/{rows[1].id}", headers=demo_key(demo))).json()
    assert (copy_read["lead_rating_id"], copy_read["case_id"]) == (lead.id, body["case_id"])
    lead_read = (await api.get(f"{RATE}/{lead.id}", headers=demo_key(demo))).json()
    assert [c["record_no"] for c in lead_read["covered"]] == numbers[1:]


async def _all_sent(db: Database) -> bool:
    async with db.session() as session:
        rows = (await session.exec(select(Notification))).all()
    return bool(rows) and all(n.status == NoticeStatus.SENT for n in rows)


async def test_a_bundle_with_a_record_already_rated_is_refused_and_nothing_is_written(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    key = demo_key(demo)
    numbers = await visit(offline_api, demo, "V-0002")
    alone = await offline_api.post(RATE, json=bad_rating(numbers[1], covers="record"), headers=key)
    assert alone.status_code == 201 and alone.json()["covered"] == []
    for covers in ("bundle", None):  # asked for, or the visit's default
        body = bad_rating(numbers[0], comment="三件事跑了两趟") | ({"covers": covers} if covers else {})
        refused = await offline_api.post(RATE, json=body, headers=key)
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert (detail["code"], detail["field"]) == ("bundle_record_rated", "covers")
        assert numbers[1] in detail["message"] and "covers = record" in detail["message"]
    assert await count(db, Rating) == 1 and await count(db, Case) == 1 and await count(db, OutboxEntry) == 1

    # The rest of the visit may still be rated one record at a time.
    own = await offline_api.post(RATE, json=bad_rating(numbers[0], covers="record"), headers=key)
    assert own.status_code == 201 and own.json()["covered"] == []
    assert await count(db, Rating) == 2 and await count(db, Case) == 2


async def test_covers_bundle_for_a_record_of_no_bundle_is_refused(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    refused = await offline_api.post(RATE, json=good("DEMO-0002", covers="bundle"), headers=demo_key(demo))
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert (detail["code"], detail["field"]) == ("not_in_bundle", "covers") and "DEMO-0002" in detail["message"]
    assert await count(db, Rating) == 0


async def test_a_theme_rating_applies_to_every_item_or_each_item_is_rated_on_its_own(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    key = demo_key(demo)
    whole = await theme(offline_api, demo, "T-0001", "开办餐饮店一件事")
    rated = await offline_api.post(RATE, json=bad_rating(whole[1], target="item"), headers=key)
    assert rated.status_code == 201, rated.text
    assert [c["record_no"] for c in rated.json()["covered"]] == [whole[0], whole[2]]
    async with db.session() as session:
        case = await session.get(Case, rated.json()["case_id"])
    assert case is not None and case.unit_id == 3  # the rated item's unit (人社局) handles the one case
    staff = await login(offline_api, "rsj_staff", demo.passwords["rsj_staff"])
    detail = (await offline_api.get(f"/api/v1/cases/{case.id}", headers=staff)).json()
    assert (detail["bundle_kind"], detail["theme_name"]) == ("theme", "开办餐饮店一件事")
    assert {r["unit_name"] for r in detail["covered_records"]} == {"烟台市市场监督管理局"}
    await page_login(offline_api, "rsj_staff", demo.passwords["rsj_staff"])
    page = await offline_api.get(f"/cases/{case.id}")
    assert page.status_code == 200, page.text
    assert "一件事「开办餐饮店一件事」" in page.text and whole[0] in page.text and whole[2] in page.text

    each = await theme(offline_api, demo, "T-0002", "新生儿出生一件事")
    answers = [await offline_api.post(RATE, json=bad_rating(number, covers="record"), headers=key) for number in each]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert all(a.json()["covered"] == [] for a in answers)
    async with db.session() as session:
        units = (
            await session.exec(select(Case.unit_id).where(col(Case.id).in_([a.json()["case_id"] for a in answers])))
        ).all()
    assert sorted(units) == [2, 2, 3]  # each item's own unit
    assert await count(db, Rating) == 6 and await count(db, Case) == 4 and await count(db, OutboxEntry) == 4


async def test_a_staff_rating_of_a_visit_covers_the_records_the_same_staff_member_handled(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    key = demo_key(demo)
    numbers = await visit(offline_api, demo, "V-0003", count=2)
    online = await register(
        offline_api, demo, "V-0003-3", bundle_no="V-0003", bundle_kind="visit", staff_no=None, service_channel="online"
    )
    assert online.status_code == 201, online.text
    staff = await offline_api.post(RATE, json=bad_rating(numbers[0], target="staff"), headers=key)
    item = await offline_api.post(RATE, json=good(numbers[0]), headers=key)
    assert [c["record_no"] for c in staff.json()["covered"]] == [numbers[1]]  # the online record had no staff
    assert [c["record_no"] for c in item.json()["covered"]] == [numbers[1], "V-0003-3"]
    assert await count(db, Rating) == 5 and await count(db, Case) == 1
    # Rated from the online record, the staff target has no one to rate.
    refused = await offline_api.post(RATE, json=good("V-0003-3", target="staff", covers="record"), headers=key)
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "no_staff_to_rate"


async def test_two_ratings_of_one_bundle_at_once_one_is_written_and_one_case_opened(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    numbers = await visit(offline_api, demo, "V-0004")
    calls = [
        offline_api.post(RATE, json=bad_rating(numbers[0]), headers=demo_key(demo)),
        offline_api.post(RATE, json=bad_rating(numbers[2], comment="另一台平板上的评价"), headers=demo_key(demo)),
    ]
    answers = await asyncio.gather(*calls)
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["detail"]["code"] in ("already_rated", "bundle_record_rated")
    assert await count(db, Rating) == 3 and await count(db, Case) == 1 and await count(db, OutboxEntry) == 1


async def test_a_whole_and_a_stage_rating_of_one_record_at_once_one_is_written(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    # No unique key tells these apart (their stages differ): the lock on the record does.
    calls = [
        offline_api.post(RATE, json=bad_rating("DEMO-0004"), headers=demo_key(demo)),
        offline_api.post(RATE, json=bad_rating("DEMO-0004", stage="acceptance"), headers=demo_key(demo)),
    ]
    answers = await asyncio.gather(*calls)
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    assert next(a for a in answers if a.status_code == 409).json()["detail"]["code"] == "stage_conflict"
    assert await count(db, Rating) == 1 and await count(db, Case) == 1
