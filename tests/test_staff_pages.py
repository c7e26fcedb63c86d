"""The unit's pages on the real stack: sign in, the inbox, the case page, steps from their forms, refusals."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.audit import AuditEvent
from models.case.steps import STEPS
from models.db import Database
from models.deadlines import CHINA_TZ, ChineseStatutoryCalendar
from pages.render import due_time, time_left_zh
from pages.step_forms import FIELD_LABELS, form_fields
from runtime.seed import DemoCredentials
from tests.support.http_case import case_at_work
from tests.support.pages import form_csrf, page_login, post_step


async def test_unsigned_visitor_is_sent_to_sign_in_and_comes_back(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    first = await offline_api.get("/cases/1")
    assert first.status_code == 303 and first.headers["location"] == "/login?next=/cases/1"
    wrong = await page_login(offline_api, "scj_staff", "not-the-password")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    signed = await page_login(offline_api, "scj_staff", demo.passwords["scj_staff"], next_url="/cases?status=all")
    assert signed.status_code == 303 and signed.headers["location"] == "/cases?status=all"
    cookie = signed.headers["set-cookie"]
    assert "hcp_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    # An address on another site is never a place to be sent after signing in.
    offline_api.cookies.clear()
    away = await page_login(offline_api, "scj_staff", demo.passwords["scj_staff"], next_url="//evil.example/x")
    assert away.headers["location"] == "/cases"


async def test_expired_session_says_so(offline_api: httpx.AsyncClient) -> None:
    offline_api.cookies.set("hcp_session", "expired-or-forged")
    response = await offline_api.get("/cases")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/cases&expired=1"
    assert "登录已过期" in (await offline_api.get(response.headers["location"])).text


async def test_sign_in_form_without_its_token_is_refused(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    response = await offline_api.post("/login", data={"username": "scj_staff", "password": demo.passwords["scj_staff"]})
    assert response.status_code == 403 and "hcp_session" not in response.headers.get("set-cookie", "")


async def test_a_clerk_handles_a_case_from_the_pages(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with case_at_work(dev_server, settings, db, demo) as (api, _staff, case_id):
        await page_login(api, "scj_staff", demo.passwords["scj_staff"])
        inbox = await api.get("/cases")
        assert inbox.status_code == 200 and f'href="/cases/{case_id}"' in inbox.text
        # The filter form as the browser sends it, with 全部阶段 and 不限 left as they are.
        filtered = await api.get("/cases", params={"status": "all", "stage": "", "overdue": ""})
        assert filtered.status_code == 200 and f'href="/cases/{case_id}"' in filtered.text
        elsewhere = await api.get("/cases", params={"status": "open", "stage": "closed"})
        assert f'href="/cases/{case_id}"' not in elsewhere.text

        page = await api.get(f"/cases/{case_id}")
        assert page.status_code == 200
        assert "签收" in page.text and "核实结论" not in page.text  # only the steps the stage allows
        assert "13912345678" not in page.text  # the rater's phone is masked
        csrf = form_csrf(page)

        refused = await api.post(f"/cases/{case_id}/steps/accept", data={"note": "签收"})
        assert refused.status_code == 403  # no CSRF token

        taken = await post_step(api, case_id, "accept", {"note": "已签收"}, csrf)
        assert taken.status_code == 303 and taken.headers["location"] == f"/cases/{case_id}?done=accept"
        assert "已办理：签收" in (await api.get(taken.headers["location"])).text

        # The same form sent again (a second tab): refused in Chinese, with the stage the case is in now.
        again = await post_step(api, case_id, "accept", {"note": "再次签收"}, csrf)
        assert again.status_code == 409 and "工单当前阶段：核实回访" in again.text

        # A field error stays next to its field, and what was typed is kept.
        await post_step(api, case_id, "callbacks", {"reached": "true", "note": "已致电致歉"}, csrf)
        bad = await post_step(
            api, case_id, "verification", {"verdict": "valid", "findings": "当日仅开一个窗口", "judgement": ""}, csrf
        )
        assert bad.status_code == 422
        assert re.search(r'id="verification-judgement-err">此项必填<', bad.text)
        assert "当日仅开一个窗口" in bad.text

        verified = await post_step(
            api, case_id, "verification",
            {"verdict": "valid", "findings": "属实", "judgement": "reasonable", "evidence": "叫号记录\n值班表"}, csrf,
        )  # fmt: skip
        assert verified.status_code == 303
        page = await api.get(f"/cases/{case_id}")
        assert "整改完成" in page.text and 'data-confirm="确认整改完成？' in page.text


async def test_show_contact_is_audited(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with case_at_work(dev_server, settings, db, demo) as (api, _staff, case_id):
        await page_login(api, "scj_staff", demo.passwords["scj_staff"])
        csrf = form_csrf(await api.get(f"/cases/{case_id}"))
        shown = await api.post(f"/cases/{case_id}/rater-contact", data={"reason": "电话回访", "csrf": csrf})
        assert shown.status_code == 200 and "13912345678" in shown.text
        async with db.session() as session:
            reveals = (await session.exec(select(AuditEvent).where(col(AuditEvent.action) == "pii.reveal"))).all()
        assert len(reveals) == 1 and reveals[0].reason == "电话回访"


async def test_another_units_case_looks_missing(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with case_at_work(dev_server, settings, db, demo) as (api, _staff, case_id):
        other = [name for name in demo.passwords if name.endswith("_staff") and name != "scj_staff"]
        assert other, demo.passwords.keys()
        await page_login(api, other[0], demo.passwords[other[0]])
        response = await api.get(f"/cases/{case_id}")
        assert response.status_code == 404 and "不存在或无权查看" in response.text
        csrf = form_csrf(await api.get("/cases"))
        taken = await post_step(api, case_id, "accept", {"note": "x"}, csrf)
        assert taken.status_code == 404


def test_a_midnight_deadline_reads_as_the_day_before_at_24_00() -> None:
    due = datetime(2026, 11, 27, 0, 0, tzinfo=CHINA_TZ)
    assert due_time(due) == "2026-11-26 24:00"
    assert due_time(datetime(2026, 11, 27, 9, 30, tzinfo=CHINA_TZ)) == "2026-11-27 09:30"
    # Monday morning, due at the end of Thursday: Tuesday, Wednesday and Thursday are left.
    now = datetime(2026, 11, 23, 9, 0, tzinfo=CHINA_TZ)
    assert time_left_zh(due, ChineseStatutoryCalendar(), now) == "剩余 3 个工作日"
    assert time_left_zh(datetime(2026, 11, 24, 0, 0, tzinfo=CHINA_TZ), ChineseStatutoryCalendar(), now).startswith(
        "今日到期"
    )
    late = datetime(2026, 11, 20, 0, 0, tzinfo=CHINA_TZ)  # ended Thursday 19th 24:00; Friday 20th and Monday 23rd late
    assert time_left_zh(late, ChineseStatutoryCalendar(), now) == "已超期 2 个工作日"


def test_every_step_field_has_a_chinese_label_and_a_widget() -> None:
    """A step added to the table gets a form; only a new field name needs its label (pages/step_forms.py)."""
    for step in STEPS:
        for spec in form_fields(step.fields, units=[(3, "人社局")]):
            assert spec.name in FIELD_LABELS, f"step {step.name}: field {spec.name} has no label in FIELD_LABELS"
            if spec.kind in ("choice", "yesno", "unit"):
                assert spec.choices and all(text for _, text in spec.choices), (step.name, spec.name)
