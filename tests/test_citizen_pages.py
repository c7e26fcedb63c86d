"""The rater's own pages: a per-record link (/q/), a window's code (/w/), QR codes, the case's progress (/r/)."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import col, func, select
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config import Settings
from models.case.records import Case
from models.db import Database, utcnow
from models.outbox import OutboxEntry
from models.rater_links import new_token
from models.rating_invitations import RatingInvitation
from models.ratings import Rating, RatingChannel, RatingTarget
from models.services import ServiceRecord
from models.windows import WindowCheckAttempt
from pages.citizen.qr import qr_png, qr_svg
from runtime.seed import DEMO_PHONE_TAIL, DEMO_WINDOW, DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.case_driver import use_policy
from tests.support.http import RATER, csrf_of, login
from tests.support.http_case import VERIFIED, Step, case_at_work, take_steps
from tests.support.services import api_client, running_worker
from tests.support.unrated import completed_recently
from tests.support.waiting import eventually

# A window transaction of 市场监管局 (unit 2), handled by 陈窗口 (SCJ-001), registered with a phone.
RECORD = {
    "record_no": "YT-2026-QR-0001",
    "item_code": "370600-XK-0001",
    "unit_code": "YT-SCJ",
    "staff_no": "SCJ-001",
    "applicant_type": "individual",
    "service_channel": "window",
    "completed_at": completed_recently(),
    "applicant_phone": "139 1111 2468",
}
TAIL = "2468"


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def register(api: httpx.AsyncClient, demo: DemoCredentials, **change: object) -> dict[str, Any]:
    response = await api.post("/api/v1/service-records", json={**RECORD, **change}, headers={"X-API-Key": demo.api_key})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def rating_link(api: httpx.AsyncClient, demo: DemoCredentials, record_no: str = "DEMO-0007") -> dict[str, Any]:
    response = await api.post(f"/api/v1/service-records/{record_no}/rating-link", headers={"X-API-Key": demo.api_key})
    assert response.status_code == 201, response.text
    return dict(response.json())


def path_of(url: str) -> str:
    return httpx.URL(url).path


def rating_form(page: httpx.Response, **fields: str) -> dict[str, str]:
    return {"csrf": csrf_of(page), "identity": "anonymous", **fields}


async def test_a_bad_rating_through_the_link_opens_a_case_once(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    temporal = TemporalConnection(settings, client=dev_server.client)
    async with running_worker(dev_server.client, settings, db), api_client(settings, db, temporal) as api:
        link = await rating_link(api, demo)
        url = path_of(link["url"])
        assert re.fullmatch(r"/q/[A-Za-z0-9_-]{32}", url) and "DEMO" not in link["url"]
        page = await api.get(url)
        assert page.status_code == 200, page.text
        for shown in ("企业设立登记", "烟台市市场监督管理局", "陈窗口", "SCJ-001", "服务效率", "服务态度"):
            assert shown in page.text, shown
        assert "服务指引是否清晰" not in page.text  # a window transaction gets the window questions
        assert page.headers["cache-control"] == "no-store"
        form = rating_form(
            page,
            level_item="very_dissatisfied",
            level_staff="satisfied",
            q_efficiency="1",
            q_attitude="4",
            comment="排队两个小时",
            identity="real_name",
            name=RATER["name"],
            phone=RATER["phone"],
        )
        first, second = await asyncio.gather(api.post(url, data=form), api.post(url, data=form))
        done, refused = (first, second) if first.status_code == 200 else (second, first)
        assert done.status_code == 200, done.text
        assert refused.status_code in (409, 410) and "已经评价过" in refused.text
        assert "1 个工作日内与您联系回访" in done.text and "短信" in done.text and "电子邮件" not in done.text
        again = await api.post(url, data=form)
        assert again.status_code == 410 and "已经评价过" in again.text

        async with db.session() as session:
            ratings = (await session.exec(select(Rating).order_by(Rating.target))).all()
            case = (await session.exec(select(Case))).one()
        assert [(r.target, r.level.value, r.is_bad) for r in ratings] == [
            (RatingTarget.ITEM, "very_dissatisfied", True),
            (RatingTarget.STAFF, "satisfied", False),
        ]
        item = ratings[0]
        assert item.channel == RatingChannel.QR_CODE and item.real_name and item.rater_phone == RATER["phone"]
        assert item.answers == {"服务效率": 1, "服务态度": 4} and item.comment == "排队两个小时"
        assert case.rating_id == item.id and case.policy_code == "yantai"
        assert await count(db, Case) == 1 and await count(db, OutboxEntry) == 1

        async def started() -> bool:
            async with db.session() as session:
                row = await session.get(Case, case.id)
                return row is not None and row.workflow_started_at is not None

        await eventually(started)


async def test_labels_come_from_the_unit_profile(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    yantai = await offline_api.get(path_of((await rating_link(offline_api, demo))["url"]))
    assert all(label in yantai.text for label in ("非常满意", "基本满意", "非常不满意"))
    await use_policy(db, "national")
    national = await offline_api.get(path_of((await rating_link(offline_api, demo, "DEMO-0002"))["url"]))
    assert all(f"> {label}</label>" in national.text for label in ("很好", "好", "一般", "差", "很差"))
    assert "非常满意" not in national.text
    # An online transaction: the item only, with the 一事一评 questions.
    assert (
        "服务指引是否清晰" in national.text and "有何改进意见" in national.text and "level_staff" not in national.text
    )


async def test_validation_errors_name_each_field_and_keep_the_values(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    url = path_of((await rating_link(offline_api, demo))["url"])
    page = await offline_api.get(url)
    form = rating_form(page, q_skill="9", comment="窗口态度冷淡", identity="real_name", email="not-an-email")
    answer = await offline_api.post(url, data=form)
    assert answer.status_code == 422
    assert "请选择一个评价等级" in answer.text and "请选择 1 到 5 分" in answer.text
    assert "请填写正确的电子邮箱地址" in answer.text and "窗口态度冷淡" in answer.text
    assert await count(db, Rating) == 0
    # A real-name rating needs a way to reach the rater.
    answer = await offline_api.post(url, data=rating_form(page, level_item="dissatisfied", identity="real_name"))
    assert answer.status_code == 422 and "至少留下电话或电子邮箱" in answer.text
    # Anonymous: what was typed into the contact fields is not kept; a good rating is simply thanked.
    form = rating_form(page, level_item="satisfied", phone="13700001111")
    thanks = await offline_api.post(url, data=form)
    assert thanks.status_code == 200 and "感谢您的评价" in thanks.text
    async with db.session() as session:
        rating = (await session.exec(select(Rating))).one()
    assert rating.rater_phone is None and not rating.real_name and rating.target == RatingTarget.ITEM
    assert await count(db, Case) == 0


async def test_unknown_and_expired_links_and_a_missing_csrf_token(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    assert (await offline_api.get("/q/not-a-real-token")).status_code == 404
    assert "此评价链接无效" in (await offline_api.get("/q/x")).text
    token, token_hash = new_token()
    async with db.session() as session:
        record = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == "DEMO-0003"))).one()
        assert record.id is not None
        session.add(
            RatingInvitation(
                record_id=record.id, token_hash=token_hash, issued_by="demo-hall", expires_at=utcnow() - timedelta(1)
            )
        )
        await session.commit()
    expired = await offline_api.get(f"/q/{token}")
    assert expired.status_code == 410 and "已过期" in expired.text

    url = path_of((await rating_link(offline_api, demo))["url"])
    page = await offline_api.get(url)
    form = rating_form(page, level_item="very_dissatisfied")
    assert (await offline_api.post(url, data={**form, "csrf": ""})).status_code == 403
    foreign = await offline_api.post(url, data=form, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    offline_api.cookies.clear()
    assert (await offline_api.post(url, data=form)).status_code == 403
    assert await count(db, Rating) == 0


async def test_the_rating_link_api(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    key = {"X-API-Key": demo.api_key}
    assert (await offline_api.post("/api/v1/service-records/DEMO-0007/rating-link")).status_code == 401
    missing = await offline_api.post("/api/v1/service-records/NO-SUCH/rating-link", headers=key)
    assert missing.status_code == 404
    link = await rating_link(offline_api, demo)
    svg = await offline_api.get(path_of(link["qr_svg_url"]), headers=key)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.content == qr_svg(link["url"]) and ET.fromstring(svg.content).tag == "{http://www.w3.org/2000/svg}svg"
    png = await offline_api.get(path_of(link["qr_png_url"]), headers=key)
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and png.content == qr_png(link["url"])
    assert svg.headers["cache-control"] == "no-store"
    assert (await offline_api.get(path_of(link["qr_svg_url"]))).status_code == 401
    # Another business system neither gets a link to this system's record nor its QR code.
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    other = await offline_api.post(
        "/api/v1/admin/api-keys", json={"name": "另一系统", "source_system": "other"}, headers=admin
    )
    other_key = {"X-API-Key": other.json()["key"]}
    assert (await offline_api.get(path_of(link["qr_svg_url"]), headers=other_key)).status_code == 404
    assert (
        await offline_api.post("/api/v1/service-records/DEMO-0007/rating-link", headers=other_key)
    ).status_code == 404
    # Once the record is rated, there is nothing left to invite to.
    page = await offline_api.get(path_of(link["url"]))
    done = await offline_api.post(
        path_of(link["url"]), data=rating_form(page, level_item="satisfied", level_staff="satisfied")
    )
    assert done.status_code == 200
    again = await offline_api.post("/api/v1/service-records/DEMO-0007/rating-link", headers=key)
    assert again.status_code == 409
    assert (await offline_api.get(path_of(link["qr_png_url"]), headers=key)).status_code == 410


async def test_a_window_code_with_the_right_and_the_wrong_check(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await register(offline_api, demo)
    await register(offline_api, demo, record_no="YT-2026-RSJ-0001", unit_code="YT-RSJ", staff_no="RSJ-001")
    await register(offline_api, demo, record_no="YT-2026-NOPHONE", applicant_phone=None)
    async with db.session() as session:
        row = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == RECORD["record_no"]))).one()
    assert row.applicant_phone_check and re.fullmatch(r"[0-9a-f]{64}", row.applicant_phone_check)
    # The number itself is kept only encrypted, for the rating invitation (tests/test_rating_timing.py reads the column).
    assert TAIL not in str(row.model_dump(exclude={"applicant_phone"}))

    url = f"/w/{DEMO_WINDOW}"
    page = await offline_api.get(url)
    assert page.status_code == 200 and "企业登记 1 号窗口" in page.text and "烟台市市场监督管理局" in page.text
    wrong = [
        {"record_no": RECORD["record_no"], "phone_tail": "2469"},  # wrong tail
        {"record_no": "YT-2026-NO-SUCH", "phone_tail": TAIL},  # no such record
        {"record_no": "YT-2026-RSJ-0001", "phone_tail": TAIL},  # right tail, another unit's record
        {"record_no": "YT-2026-NOPHONE", "phone_tail": TAIL},  # no phone on file
    ]
    answers = [await offline_api.post(url, data={**w, "csrf": csrf_of(page)}) for w in wrong]
    assert {a.status_code for a in answers} == {422}
    assert len({re.sub(r'value="[^"]*"', "", a.text) for a in answers}) == 1  # one message, whatever was wrong
    assert "办件编号或手机号后四位不正确" in answers[0].text

    right = await offline_api.post(
        url, data={"record_no": RECORD["record_no"], "phone_tail": TAIL, "csrf": csrf_of(page)}
    )
    assert right.status_code == 303 and right.headers["location"].startswith("/q/")
    form_page = await offline_api.get(right.headers["location"])
    assert form_page.status_code == 200 and "陈窗口" in form_page.text
    thanks = await offline_api.post(right.headers["location"], data=rating_form(form_page, level_item="satisfied"))
    assert thanks.status_code == 200 and "感谢您的评价" in thanks.text
    async with db.session() as session:
        rating = (await session.exec(select(Rating))).one()
        invitations = (
            await session.exec(
                select(RatingInvitation).where(RatingInvitation.record_id == row.id).order_by(col(RatingInvitation.id))
            )
        ).all()
    # The counter device's link came with the registration (docs/devices.md); the window's code made the other.
    counter, invitation = invitations
    assert counter.issued_by == "demo-hall" and counter.token_sealed is not None and counter.used_at is None
    assert rating.record_id == row.id and rating.channel == RatingChannel.QR_CODE
    assert invitation.issued_by == f"window:{DEMO_WINDOW}" and invitation.token_sealed is None
    assert abs(invitation.expires_at - invitation.created_at - timedelta(minutes=30)) < timedelta(seconds=5)

    assert (await offline_api.get("/w/NO-SUCH-WINDOW")).status_code == 404
    assert (await offline_api.post(url, data={"record_no": RECORD["record_no"], "phone_tail": TAIL})).status_code == 403


async def test_a_client_is_locked_out_of_a_window_after_five_wrong_checks(
    offline_api: httpx.AsyncClient, settings: Settings, demo: DemoCredentials, db: Database
) -> None:
    await register(offline_api, demo)
    url = f"/w/{DEMO_WINDOW}"
    page = await offline_api.get(url)
    guess = {"record_no": RECORD["record_no"], "csrf": csrf_of(page)}
    wrong = [await offline_api.post(url, data={**guess, "phone_tail": f"{n:04d}"}) for n in range(5)]
    assert [w.status_code for w in wrong] == [422] * 5
    locked = await offline_api.post(url, data={**guess, "phone_tail": TAIL})
    assert locked.status_code == 429 and locked.headers["retry-after"] == "900" and "15 分钟后再试" in locked.text

    # Another client is not locked out by this one's guesses.
    app = create_app(settings, db, TemporalConnection(settings))
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        other_page = await other.get(url)
        ok = await other.post(url, data={**guess, "csrf": csrf_of(other_page), "phone_tail": TAIL})
        assert ok.status_code == 303
    # After the lock's fifteen minutes the first client may try again.
    async with db.session() as session:
        for attempt in (await session.exec(select(WindowCheckAttempt))).all():
            attempt.attempted_at -= timedelta(minutes=16)
            session.add(attempt)
        await session.commit()
    assert (await offline_api.post(url, data={**guess, "phone_tail": TAIL})).status_code == 303


async def test_window_qr_codes_and_the_printable_sheet(
    offline_api: httpx.AsyncClient, settings: Settings, demo: DemoCredentials
) -> None:
    window_url = f"{settings.public_base_url}/w/{DEMO_WINDOW}"
    svg = await offline_api.get(f"/qr/window/{DEMO_WINDOW}.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(svg.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and "企业登记 1 号窗口" in svg.content.decode()
    assert svg.content == qr_svg(window_url, "烟台市市场监督管理局 企业登记 1 号窗口 评价二维码")
    png = await offline_api.get(f"/qr/window/{DEMO_WINDOW}.png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.content == qr_png(window_url)
    assert (await offline_api.get("/qr/window/NOPE.png")).status_code == 404

    sheet = await offline_api.get(f"/w/{DEMO_WINDOW}/print")
    assert sheet.status_code == 200
    for shown in (
        "请扫码评价",
        "烟台市市场监督管理局",
        "企业登记 1 号窗口",
        f'src="/qr/window/{DEMO_WINDOW}.svg"',
        window_url,
    ):
        assert shown in sheet.text, shown


async def test_the_case_page_shows_progress_and_hides_the_handling(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with case_at_work(dev_server, settings, db, demo) as (api, staff, case_id):
        verification: dict[str, object] = {
            "verdict": "valid",
            "findings": "内部核实记录甲",
            "judgement": "reasonable",
            "evidence": ["叫号记录乙"],
        }
        steps: tuple[Step, ...] = (
            *VERIFIED[:2],
            ("verification", verification),
            ("rectification", {"measures": "内部整改措施丙"}),
            ("feedback", {"message": "我局已增开两个窗口"}),
        )
        await take_steps(api, case_id, staff, steps)

        async def sms_link() -> str | None:
            found = [re.search(r"/r/([A-Za-z0-9_-]+)", p.read_text()) for p in settings.sms_dir.glob("*.txt")]
            return found[0].group(1) if found and found[0] else None

        token = await eventually(sms_link)
        page = await api.get(f"/r/{token}")
        assert page.status_code == 200 and "办理结果确认" in page.text
        for shown in ("已受理", "已核实", "已整改", "办理结果已反馈", "我局已增开两个窗口", "北京时间"):
            assert shown in page.text, shown
        hidden = ("内部核实记录甲", "叫号记录乙", "内部整改措施丙", "张承办", "陈窗口", RATER["name"], RATER["phone"])
        for secret in hidden:
            assert secret not in page.text, secret
        form = {"satisfied": "no", "comment": "还需要预约", "csrf": csrf_of(page)}
        answered = await api.post(f"/r/{token}", data=form)
        assert answered.status_code == 200 and "感谢您的反馈" in answered.text and "不满意" in answered.text

        async def reopened() -> httpx.Response | None:
            again = await api.get(f"/r/{token}")
            return again if "重新办理" in again.text else None

        again = await eventually(reopened)
        assert again.status_code == 410 and "此链接已使用" in again.text and "还需要预约" in again.text
        assert "核实：" in again.text and 'name="satisfied"' not in again.text
        for secret in hidden:
            assert secret not in again.text, secret


async def test_demo_records_answer_the_window_check(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    """The README tour rates through the demo window with any demo record and the phone ending DEMO_PHONE_TAIL."""
    page = await offline_api.get(f"/w/{demo.window_code}")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = await offline_api.post(
        f"/w/{demo.window_code}", data={"record_no": "DEMO-0004", "phone_tail": DEMO_PHONE_TAIL, "csrf": csrf.group(1)}
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/q/"), answer.text
