"""A case's result is pushed when the case finishes (closed, or not adopted), once, on both databases.

The real API and worker on the Temporal dev server, the worker's upstream relay, and the test
platform on a real port: the rating is reported at intake, the result when the record activity
writes the event that finishes the case, and the platform counts exactly one of each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.case.records import Case
from models.db import Database
from models.upstream import PushKind, PushStatus, UpstreamPush
from models.upstream_fields import platform_time
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import bad_rating, login
from tests.support.http_case import Step, take_steps
from tests.support.services import api_client, running_worker
from tests.support.upstream import FakeUpstream, fake_upstream, reporting_to, running_upstream_relay
from tests.support.waiting import eventually

# An anonymous bad review: nobody to call back or tell, so the case closes when the unit gives its feedback.
ANONYMOUS = {"real_name": False, "rater": None, "comment": "材料被退回三次"}


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as platform:
        yield platform


async def open_anonymous_case(api: httpx.AsyncClient, demo: DemoCredentials, staff: dict[str, str]) -> int:
    created = await api.post(
        "/api/v1/ratings", json=bad_rating("DEMO-0001", **ANONYMOUS), headers={"X-API-Key": demo.api_key}
    )
    assert created.status_code == 201, created.text
    case_id = int(created.json()["case_id"])

    async def started() -> bool:
        return bool((await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()["workflow_started"])

    await eventually(started, timeout=30)
    return case_id


async def delivered(db: Database, count: int) -> list[UpstreamPush]:
    async def check() -> list[UpstreamPush]:
        async with db.session() as session:
            rows = list((await session.exec(select(UpstreamPush).order_by(col(UpstreamPush.id)))).all())
        return rows if sum(p.status == PushStatus.DELIVERED for p in rows) == count == len(rows) else []

    return await eventually(check, timeout=30)


async def test_a_closed_cases_result_is_pushed_once_when_it_closes(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials, upstream: FakeUpstream
) -> None:
    reporting = reporting_to(settings, upstream)
    temporal = TemporalConnection(reporting, client=dev_server.client)
    async with (
        running_worker(dev_server.client, reporting, db),
        api_client(reporting, db, temporal) as api,
        running_upstream_relay(db, reporting),
    ):
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        case_id = await open_anonymous_case(api, demo, staff)
        [rating_push] = await delivered(db, 1)
        steps: tuple[Step, ...] = (
            ("accept", {"note": "签收"}),
            ("verification", {"verdict": "valid", "findings": "当日仅开一个窗口", "judgement": "reasonable"}),
            ("rectification", {"measures": "增开两个窗口"}),
            ("feedback", {"message": "已增开窗口并推行预约办理"}),
        )
        await take_steps(api, case_id, staff, steps)
        rating_push, result_push = await delivered(db, 2)

    async with db.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None and case.stage == "closed" and case.closed_at is not None
    assert (result_push.kind, result_push.subject_id, result_push.attempts) == (PushKind.CASE_RESULT, case_id, 1)
    # Exactly one of each upstream, each asked for once.
    assert len(upstream.requests) == 2 and list(upstream.recorded) == [rating_push.push_key, result_push.push_key]
    [result] = upstream.recorded_of("case_result")
    assert result["push_id"] == result_push.push_key
    assert result["data"] == {
        "办件编号": "DEMO-0001",
        "评价推送编号": rating_push.push_key,
        "评价时间": upstream.recorded_of("rating")[0]["data"]["评价时间"],
        "行政区划": "370600",
        "承办单位代码": "YT-SCJ",
        "承办单位名称": "烟台市市场监督管理局",
        "核实结论": "属实",
        "整改结果": "已整改",
        "整改措施": "增开两个窗口",
        "解释说明": "",
        "反馈信息": "已增开窗口并推行预约办理",
        "反馈时间": result["data"]["反馈时间"],
        "办理结果": "匿名评价，无法反馈",
        "办理结果代码": "no_contact",
        "办结时间": platform_time(case.closed_at),
        "重新交办次数": "0",
        "督办升级级别": "0",
        "差评是否采纳": "是",
    }
    assert result["data"]["反馈时间"] <= result["data"]["办结时间"]


async def test_a_case_not_adopted_after_an_upheld_appeal_is_reported_with_that_result(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials, upstream: FakeUpstream
) -> None:
    reporting = reporting_to(settings, upstream)
    temporal = TemporalConnection(reporting, client=dev_server.client)
    async with (
        running_worker(dev_server.client, reporting, db),
        api_client(reporting, db, temporal) as api,
        running_upstream_relay(db, reporting),
    ):
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        reviewer = await login(api, "reviewer", demo.passwords["reviewer"])
        case_id = await open_anonymous_case(api, demo, staff)
        steps: tuple[Step, ...] = (
            ("accept", {"note": "签收"}),
            ("verification", {"verdict": "disputed", "findings": "当日无此办件排队记录", "judgement": "unreasonable"}),
            ("appeal", {"reason": "误评：评价时间不在办理时段", "evidence": ["叫号记录"]}),
        )
        await take_steps(api, case_id, staff, steps)
        await take_steps(api, case_id, reviewer, (("appeal-decision", {"upheld": True, "reason": "证据充分，属误评"}),))
        _, result_push = await delivered(db, 2)

    [result] = upstream.recorded_of("case_result")
    assert result["push_id"] == result_push.push_key and len(upstream.requests) == 2
    data = result["data"]
    assert (data["核实结论"], data["整改结果"], data["办理结果"], data["办理结果代码"]) == (
        "误评或恶意差评",
        "不予采纳",
        "不予采纳",
        "not_adopted",
    )
    assert (data["解释说明"], data["差评是否采纳"], data["整改措施"]) == ("证据充分，属误评", "否", "")
