"""Follow-up ratings (追评): after the rater's own rating, as many as the profile allows, within its window.

A bad follow-up on a good rating opens exactly one case; one on a target whose rating has a case is
kept on that case's timeline (the rater's satisfaction with the result once it has reached
rectification), never a second case.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from models.case.records import Case, CaseEvent
from models.case.vocabulary import Stage
from models.db import Database, utcnow
from models.outbox import OutboxEntry
from models.rating_timing import FOLLOW_UP_ACTION
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ServiceRecord
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating, csrf_of, login
from tests.support.intake import count


def key(demo: DemoCredentials) -> dict[str, str]:
    return {"X-API-Key": demo.api_key}


def good(record_no: str = "DEMO-0002", **more: Any) -> dict[str, Any]:
    return {"record_no": record_no, "level": "satisfied", "channel": "mobile", **more}


async def rate(api: httpx.AsyncClient, demo: DemoCredentials, body: dict[str, Any]) -> httpx.Response:
    return await api.post("/api/v1/ratings", json=body, headers=key(demo))


async def chain(db: Database, record_no: str) -> list[Rating]:
    async with db.session() as session:
        record = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == record_no))).one()
        rows = await session.exec(
            select(Rating).where(Rating.record_id == record.id).order_by(col(Rating.follow_up), col(Rating.target))
        )
        return list(rows.all())


async def follow_up_events(db: Database) -> list[CaseEvent]:
    async with db.session() as session:
        return list((await session.exec(select(CaseEvent).where(CaseEvent.action == FOLLOW_UP_ACTION))).all())


async def test_a_follow_up_needs_the_raters_own_rating_and_comes_once(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    alone = await rate(offline_api, demo, good(follow_up=True))
    assert alone.status_code == 409 and alone.json()["detail"]["code"] == "no_rating_to_follow_up"
    assert "尚未评价" in alone.json()["detail"]["message"]
    assert (await rate(offline_api, demo, good())).status_code == 201
    # Without follow_up, a second rating is refused as before, and told how to follow up.
    twice = await rate(offline_api, demo, good(level="very_satisfied"))
    assert twice.status_code == 409 and twice.json()["detail"]["code"] == "already_rated"
    # assessNumber 2, as provincial interfaces send it, is the same follow-up.
    follow = await rate(offline_api, demo, good(level="very_satisfied", assess_number="2", comment="补办很快"))
    assert follow.status_code == 201, follow.text
    assert follow.json()["case_id"] is None and follow.json()["is_bad"] is False
    third = await rate(offline_api, demo, good(follow_up=True))
    assert third.status_code == 409 and third.json()["detail"]["code"] == "follow_up_limit_reached"
    assert "最多可追评 1 次" in third.json()["detail"]["message"]
    assert [(r.follow_up, r.level) for r in await chain(db, "DEMO-0002")] == [
        (0, RatingLevel.SATISFIED),
        (1, RatingLevel.VERY_SATISFIED),
    ]
    both = await rate(offline_api, demo, good(follow_up=True, assess_number=2))
    assert both.status_code == 422
    assert await count(db, Case) == 0


async def test_a_follow_up_after_its_window_is_refused_naming_the_deadline(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    assert (await rate(offline_api, demo, good())).status_code == 201
    async with db.session() as session:
        rating = (await session.exec(select(Rating))).one()
        rating.submitted_at = utcnow() - timedelta(days=15, seconds=1)  # the national 15 natural days have passed
        session.add(rating)
        await session.commit()
    late = await rate(offline_api, demo, good(follow_up=True))
    assert late.status_code == 409 and late.json()["detail"]["code"] == "follow_up_window_closed"
    assert "15 天" in late.json()["detail"]["message"]
    async with db.session() as session:
        rating = (await session.exec(select(Rating))).one()
        rating.submitted_at = utcnow() - timedelta(days=14, hours=23)
        session.add(rating)
        await session.commit()
    assert (await rate(offline_api, demo, good(follow_up=True))).status_code == 201


async def test_a_bad_follow_up_on_a_good_rating_opens_one_case_even_sent_twice_at_once(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    assert (await rate(offline_api, demo, good("DEMO-0001"))).status_code == 201
    body = bad_rating("DEMO-0001", follow_up=True, comment="领取证照时又被要求补材料")
    first, second = await asyncio.gather(rate(offline_api, demo, body), rate(offline_api, demo, body))
    codes = sorted([first.status_code, second.status_code])
    assert codes == [201, 409], (first.text, second.text)
    won = first if first.status_code == 201 else second
    lost = second if won is first else first
    assert lost.json()["detail"]["code"] == "follow_up_limit_reached"
    assert won.json()["is_bad"] is True and won.json()["case_id"] is not None
    async with db.session() as session:
        case = (await session.exec(select(Case))).one()
    assert case.rating_id == won.json()["rating_id"]
    assert await count(db, Case) == 1 and await count(db, OutboxEntry) == 1
    assert await follow_up_events(db) == []


async def test_a_follow_up_on_a_rectified_case_is_the_raters_satisfaction_with_it(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    first = await rate(offline_api, demo, bad_rating("DEMO-0001"))
    assert first.status_code == 201 and first.json()["case_id"] is not None
    async with db.session() as session:
        case = await session.get(Case, first.json()["case_id"])
        assert case is not None
        case.stage = Stage.FEEDBACK  # rectified, the result on its way to the rater
        session.add(case)
        await session.commit()
    follow = await rate(offline_api, demo, good("DEMO-0001", follow_up=True, comment="已经改好了"))
    assert follow.status_code == 201 and follow.json()["case_id"] is None
    assert await count(db, Case) == 1 and await count(db, OutboxEntry) == 1
    [event] = await follow_up_events(db)
    assert event.case_id == case.id and event.stage == Stage.FEEDBACK and event.actor == "rater"
    assert event.data["about"] == "result" and event.data["satisfied"] is True
    assert event.data["rating_id"] == follow.json()["rating_id"] and event.data["comment"] == "已经改好了"
    assert event.data["summary"] == "追评：满意（对办理结果满意）：已经改好了"  # as the case page shows it
    # The case page shows it on the timeline.
    case_view = await case_page(offline_api, demo, case.id)
    assert FOLLOW_UP_ACTION in [e["action"] for e in case_view["timeline"]]


async def test_a_bad_follow_up_while_the_case_is_handled_is_kept_on_it_never_a_second_case(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    first = await rate(offline_api, demo, bad_rating("DEMO-0001"))
    assert first.status_code == 201
    follow = await rate(offline_api, demo, bad_rating("DEMO-0001", follow_up=True, comment="还没有人联系我"))
    assert follow.status_code == 201, follow.text
    assert follow.json()["is_bad"] is True and follow.json()["case_id"] is None
    assert await count(db, Case) == 1 and await count(db, OutboxEntry) == 1
    [event] = await follow_up_events(db)
    assert event.stage == Stage.ASSIGNED and event.data["about"] == "handling" and event.data["satisfied"] is None


async def test_a_default_rating_is_not_the_raters_to_follow_up(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with db.session() as session:
        record = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == "DEMO-0003"))).one()
        assert record.id is not None
        session.add(
            Rating(
                record_id=record.id, level=RatingLevel.BASICALLY_SATISFIED, channel=RatingChannel.SYSTEM_DEFAULT,
                target=RatingTarget.ITEM, is_bad=False, source_system="system-default",
            )
        )  # fmt: skip
        await session.commit()
    refused = await rate(offline_api, demo, good("DEMO-0003", follow_up=True))
    assert refused.status_code == 409 and refused.json()["detail"]["code"] == "no_rating_to_follow_up"
    assert "默认评价" in refused.json()["detail"]["message"]


async def test_a_batch_takes_no_follow_up(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    assert (await rate(offline_api, demo, good())).status_code == 201
    items = [good(follow_up=True), good("DEMO-0005")]
    answer = await offline_api.post("/api/v1/ratings:batch", json={"items": items}, headers=key(demo))
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["items"]
    assert first["error"]["code"] == "follow_up_one_at_a_time" and first["error"]["field"] == "follow_up"
    assert second["status"] == "accepted"
    assert await count(db, Rating) == 2


def follow_up_form(page: httpx.Response, **fields: str) -> dict[str, str]:
    """The 追评 form as the page gives it: its CSRF token and which state of the record it was shown for."""
    shown = re.search(r'name="follow_up" value="(\d+)"', page.text)
    assert shown, page.text
    return {"csrf": csrf_of(page), "follow_up": shown.group(1), "identity": "anonymous", **fields}


async def test_the_raters_link_offers_the_follow_up_once(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    url = f"/q/{demo.rating_token}"  # DEMO-0007: a window transaction (item and staff)
    page = await offline_api.get(url)
    first = {"csrf": csrf_of(page), "identity": "anonymous", "level_item": "satisfied", "level_staff": "satisfied"}
    assert (await offline_api.post(url, data=first)).status_code == 200
    # The same form sent again (a reload, a second tap) is not a 追评.
    resent = await offline_api.post(url, data=first)
    assert resent.status_code == 410 and "已经评价过" in resent.text
    again = await offline_api.get(url)  # the link, used: now the 追评 form of both targets
    assert again.status_code == 200 and "追加评价" in again.text and "level_staff" in again.text
    form = follow_up_form(again, level_item="dissatisfied", comment="证照有错字")
    done = await offline_api.post(url, data=form)
    assert done.status_code == 200 and "评价已收到" in done.text  # a bad follow-up on a good rating: a case
    twice = await offline_api.post(url, data=form)  # the 追评 form sent twice
    assert twice.status_code == 410 and await count(db, Rating) == 3
    left = await offline_api.get(url)  # the staff member may still be followed up
    assert left.status_code == 200 and "level_item" not in left.text and "level_staff" in left.text
    assert "感谢您的追评" in (await offline_api.post(url, data=follow_up_form(left, level_staff="very_satisfied"))).text
    gone = await offline_api.get(url)
    assert gone.status_code == 410 and "已经评价过" in gone.text
    assert [(r.target, r.follow_up) for r in await chain(db, "DEMO-0007")] == [
        (RatingTarget.ITEM, 0),
        (RatingTarget.STAFF, 0),
        (RatingTarget.ITEM, 1),
        (RatingTarget.STAFF, 1),
    ]
    assert await count(db, Case) == 1


async def case_page(api: httpx.AsyncClient, demo: DemoCredentials, case_id: int) -> dict[str, Any]:
    staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
    response = await api.get(f"/api/v1/cases/{case_id}", headers=staff)
    assert response.status_code == 200, response.text
    return dict(response.json())
