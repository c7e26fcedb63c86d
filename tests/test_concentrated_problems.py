"""Concentrated problems (差评集中事项) from hand-made ratings: the threshold, what is not counted, scope, keywords.

The demo region runs under Yantai's profile, which keeps the national [concentration]: 5 adopted bad
reviews within 30 days.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import select

from models.concentration_keywords import common_words, words_of
from models.db import Database, utcnow
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ApplicantType, ServiceChannel, ServiceRecord
from runtime.seed import DemoCredentials
from tests.support.http import login
from tests.support.pages import page_login

PATH = "/api/v1/concentrated-problems"
COMMENTS = [
    "窗口排队两个小时，工作人员态度很差",
    "排队时间太长了，只开了一个窗口",
    "材料要求反复变化，多次往返跑动",
    "工作人员态度冷漠，排队两小时",
    "王小明态度差，窗口排队很久",
]


async def _bad_reviews(
    db: Database, unit_id: int, comments: list[str], *, adopted: list[bool] | None = None, days_ago: float = 1,
    target: RatingTarget = RatingTarget.ITEM, staff_id: int | None = None, item_id: int = 1, tag: str = "",
) -> None:  # fmt: skip
    """One record and one bad rating per comment, of this unit, `days_ago` days back."""
    async with db.session() as session:
        count = len((await session.exec(select(ServiceRecord.id))).all())
        for n, comment in enumerate(comments):
            record = ServiceRecord(
                record_no=f"HAND-{count + n:04d}", item_id=item_id, unit_id=unit_id, staff_id=staff_id,
                applicant_type=ApplicantType.INDIVIDUAL, service_channel=ServiceChannel.WINDOW,
                source_system="demo-hall", completed_at=utcnow() - timedelta(days=days_ago + 1),
            )  # fmt: skip
            session.add(record)
            await session.flush()
            assert record.id is not None
            session.add(
                Rating(
                    record_id=record.id,
                    level=RatingLevel.VERY_DISSATISFIED,
                    channel=RatingChannel.HALL_TABLET,
                    target=target,
                    comment=comment,
                    is_bad=True,
                    adopted=adopted[n] if adopted else True,
                    answers={"测评内容": [tag]} if tag else {},
                    source_system="demo-hall",
                    submitted_at=utcnow() - timedelta(days=days_ago),
                )  # fmt: skip
            )
        await session.commit()


async def _report(api: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict:
    response = await api.get(PATH, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_threshold_is_five_adopted_bad_reviews_in_the_period(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    await _bad_reviews(db, 2, COMMENTS[:4])  # 市场监管局: four
    await _bad_reviews(db, 2, ["排队太久"], days_ago=31)  # outside the 30 days
    await _bad_reviews(db, 3, COMMENTS, adopted=[True, True, True, True, False])  # 人社局: one not adopted
    report = await _report(offline_api, supervisor, kind="unit")
    assert (report["min_bad"], report["within"]) == (5, "30d")
    assert report["items"] == []

    await _bad_reviews(db, 2, COMMENTS[4:])  # the fifth
    report = await _report(offline_api, supervisor, kind="unit")
    assert [(p["key"], p["bad_count"]) for p in report["items"]] == [("unit:2", 5)]
    problem = report["items"][0]
    assert problem["name"] == "烟台市市场监督管理局" and problem["case_ids"] == []
    words = {k["word"]: k["raters"] for k in problem["keywords"]}
    assert words["排队"] == 4 and words["态度"] == 3 and words["窗口"] == 3
    assert "王小明" not in words  # a person's name is not a keyword
    # The same item (企业设立登记) of both units: 5 of 市场监管局 and 4 adopted of 人社局.
    items = await _report(offline_api, supervisor, kind="item")
    assert [(p["key"], p["bad_count"], p["unit_id"]) for p in items["items"]] == [("item:1", 9, None)]


async def test_scope_staff_and_tags(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    await _bad_reviews(db, 3, COMMENTS, target=RatingTarget.STAFF, staff_id=2, tag="very_dissatisfied/05")
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    report = await _report(offline_api, supervisor, kind="staff")
    assert [(p["key"], p["name"], p["unit_id"]) for p in report["items"]] == [("staff:2", "周窗口", 3)]
    assert report["items"][0]["tags"] == [{"label": "办事效率低", "ratings": 5}]
    # Narrowed to 市场监管局's subtree, nothing; a unit outside the supervisor's scope is refused.
    assert (await _report(offline_api, supervisor, unit_id="2"))["items"] == []
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    assert len((await _report(offline_api, admin, kind="unit"))["items"]) == 1
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    assert (await offline_api.get(PATH, headers=staff)).status_code == 403
    bad_until = await offline_api.get(PATH, params={"until": "2026-12-01T00:00:00"}, headers=supervisor)
    assert bad_until.status_code == 422 and "until" in bad_until.text


async def test_the_page_shows_problems_and_their_words(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await _bad_reviews(db, 2, COMMENTS)
    await page_login(offline_api, "supervisor", demo.passwords["supervisor"])
    page = await offline_api.get("/concentrated")
    assert page.status_code == 200
    assert "烟台市市场监督管理局" in page.text and "排队（4）" in page.text
    assert "没有可纳入的差评工单" in page.text  # hand-made ratings have no cases to link
    offline_api.cookies.clear()


def test_words_are_counted_once_per_comment_and_stopwords_dropped() -> None:
    assert words_of("排队排队，态度差，希望改进") >= {"排队", "态度"}
    assert not words_of("希望服务好一点") & {"希望", "服务"}
    assert common_words(["排队很久排队", "排队", "只有一个人说的词"], 5) == [("排队", 2)]
