"""Cases as GB/T 39046-2020 表10 rows and their reminders and escalations as 表11 电子监察 rows.

Real cases on the time-skipping server: a case left overdue across a weekend (both escalation rungs,
reminders, a supervisor's reminder) then finished, a case whose deadline a supervisor extended on the
unit's request, and a case of another unit. The exports are read back through the API (each audited
once, scoped for a supervisor) and the command, and checked against the timeline and the notices.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from config import PROJECT_ROOT, Settings
from models.audit import AuditEvent
from models.calendar import CalendarYear, LoadedCalendar
from models.case.records import CaseEvent
from models.case.step_inputs import (
    AcceptInput,
    ExtensionDecisionInput,
    ExtensionRequestInput,
    FeedbackInput,
    RectificationInput,
    RemindInput,
)
from models.case.vocabulary import DeadlineView, Stage
from models.db import Database
from models.deadlines import CHINA_TZ
from models.national_tables import table10, table11
from models.national_tables.codes import load_table11_codes, table11_codes
from models.national_tables.deadlines import overdue_days
from models.notifications import NoticeStatus, Notification
from models.policy import DeadlineName
from runtime.seed import DemoCredentials
from tests.support.case_driver import SCJ_STAFF, SUPERVISOR, CaseDriver, through_verification
from tests.support.http import RATER, login
from tests.support.waiting import eventually
from tests.support.world import World
from workflows.case import CaseWorkflow

SUPERVISION_KINDS = ("reminder", "escalation", "supervisor_reminder")
RSJ_SUPERVISOR: dict[str, Any] = {"username": "rsj_supervisor", "display_name": "人社局 督办", "role": "supervisor", "unit_id": 3,
                  "password": "another-long-password"}  # fmt: skip


def rows_of(response: httpx.Response) -> list[dict[str, str]]:
    """The CSV's rows by column name, after checking the BOM, the CRLF line ends and the Chinese header."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())
    text = response.content.decode("utf-8").removeprefix("\ufeff")
    assert "\r\n" in text
    return list(csv.DictReader(io.StringIO(text, newline="")))


def china(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%Y%m%dT%H%M%S")


def next_thursday(now: datetime) -> datetime:
    """10:00 China time on the first Thursday at least a day after `now`."""
    day = (now.astimezone(CHINA_TZ) + timedelta(days=1)).date()
    while day.weekday() != 3:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, tzinfo=CHINA_TZ)


async def weekends_only(world: World, *years: int) -> None:
    """A working-day calendar without holidays for these years, so the expected days are plain weekdays."""
    async with world.db.session() as session:
        for year in years:
            session.add(CalendarYear(year=year, holidays=[], workdays=[], source="测试日历：仅周末休息"))
        await session.commit()


async def has_events(case: CaseDriver, *wanted: tuple[str, str, int]) -> bool:
    """Whether the timeline has each (action, deadline, rung) escalation event."""
    events = await case.events()
    found = {(e.action, e.data.get("deadline"), e.data.get("rung")) for e in events}
    return all(w in found for w in wanted)


async def all_sent(world: World) -> bool:
    async with world.db.session() as session:
        statuses = (await session.exec(select(Notification.status))).all()
    return bool(statuses) and all(s == NoticeStatus.SENT for s in statuses)


async def supervision_notices(world: World) -> set[tuple[int, str]]:
    """(case, event) of every reminder, escalation and supervisor's reminder notice written."""
    async with world.db.session() as session:
        notices = (await session.exec(select(Notification).where(col(Notification.kind).in_(SUPERVISION_KINDS)))).all()
    return {(n.case_id or 0, n.event_key) for n in notices}


async def event_keys(world: World, ids: list[int]) -> list[tuple[int, str]]:
    async with world.db.session() as session:
        events = (await session.exec(select(CaseEvent).where(col(CaseEvent.id).in_(ids)))).all()
    by_id = {e.id: (e.case_id, e.event_key) for e in events}
    return [by_id[i] for i in ids]


async def audits(world: World, action: str) -> list[AuditEvent]:
    async with world.db.session() as session:
        return list((await session.exec(select(AuditEvent).where(AuditEvent.action == action))).all())


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_cases_export_as_table10_and_their_reminders_and_escalations_as_table11(
    world: World, tmp_path: Path
) -> None:
    thursday = next_thursday(await world.env.get_current_time())
    await world.sleep(thursday - await world.env.get_current_time())
    await weekends_only(world, thursday.year, thursday.year + 1)
    friday_end, monday_end = thursday.replace(hour=0) + timedelta(days=2), thursday.replace(hour=0) + timedelta(days=5)

    # A: taken by the unit, reminded by a supervisor, then left alone from Thursday to Tuesday 10:00.
    late = await world.open(record_no="DEMO-0001", target="staff", comment="=1+1 窗口排队两小时")
    await late.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    await late.do(CaseWorkflow.remind, RemindInput(actor=SUPERVISOR, message="请尽快回访"))
    # B: the unit asks for more time to verify, the supervisor agrees.
    extended = await world.open(record_no="DEMO-0002")
    await extended.do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    new_due = monday_end + timedelta(days=3, hours=18)
    reason = "需调取窗口监控录像核实"
    await extended.do(CaseWorkflow.request_extension, ExtensionRequestInput(
        actor=SCJ_STAFF, deadline=DeadlineName.VERIFICATION, new_due_at=new_due, reason=reason))  # fmt: skip
    await extended.do(CaseWorkflow.decide_extension, ExtensionDecisionInput(actor=SUPERVISOR, approve=True))
    # C: a case of 人社局, never touched.
    other = await world.open(record_no="DEMO-0003")

    await world.sleep(thursday + timedelta(days=5) - await world.env.get_current_time())
    await eventually(lambda: has_events(late, ("escalated", "callback", 2), ("overdue", "verification", 1)))
    await eventually(lambda: has_events(other, ("escalated", "callback", 2)))
    await through_verification(late, accepted=True)  # Tuesday 10:00: called back and verified, late
    await late.do(CaseWorkflow.rectify, RectificationInput(actor=SCJ_STAFF, measures="增开窗口"))
    await late.do(CaseWorkflow.give_feedback, FeedbackInput(actor=SCJ_STAFF, message='=HYPERLINK("x") 已增开窗口'))
    await eventually(lambda: late.stage_is(Stage.RATER_RESPONSE))
    await eventually(lambda: all_sent(world))

    admin = await login(world.api, "admin", world.demo.passwords["admin"])
    period = f"from={date.today() - timedelta(days=1)}&to={(thursday + timedelta(days=10)).date()}"
    t10 = await world.api.get(f"/api/v1/exports/table10.csv?{period}", headers=admin)
    t11 = await world.api.get(f"/api/v1/exports/table11.csv?{period}", headers=admin)
    rows10, rows11 = rows_of(t10), rows_of(t11)
    assert list(rows10[0]) == list(table10.COLUMNS) and list(rows11[0]) == list(table11.COLUMNS)
    assert "table10" in t10.headers["content-disposition"] and "%E8%A1%A810" in t10.headers["content-disposition"]

    # 表10: one row per case, oldest first.
    assert [r["办件编号"] for r in rows10] == ["DEMO-0001", "DEMO-0002", "DEMO-0003"]
    a, b, c = rows10
    assert a["承办单位代码"] == "YT-SCJ" and a["承办单位名称"] == "烟台市市场监督管理局" and a["行政区划"] == "370600"
    assert a["承办人"] == "市场监管局 张承办" and a["投诉人"] == "实名评价人" and a["被投诉人"] == "SCJ-001"
    assert a["投诉内容"] == "'=1+1 窗口排队两小时"  # a formula is kept text
    assert a["反馈信息"] == '\'=HYPERLINK("x") 已增开窗口' and a["反馈时间"].startswith(
        china(thursday + timedelta(days=5))[:9]
    )
    # Callback due Friday 24:00, done Tuesday 10:00; verification due Monday 24:00, done with it. Saturday and
    # Sunday are not working days; Monday and Tuesday are: 2 working days (4 natural days).
    assert a["超期天数"] == "2"
    # The deadline run last is the feedback's: 1 working day from Tuesday, so Wednesday 24:00; never extended.
    assert a["承诺时限"] == china(thursday.replace(hour=0) + timedelta(days=7)) and a["延期时限"] == a["延期原因"] == ""
    assert b["承诺时限"] == china(monday_end) and b["延期时限"] == china(new_due) and b["延期原因"] == reason
    assert b["承办人"] == "市场监管局 张承办" and b["被投诉人"] == "" and b["反馈信息"] == ""
    assert c["承办单位名称"] == "烟台市人力资源和社会保障局" and c["承办人"] == "" and c["承办时间"] == ""
    # While 回访 and 核实 both run, the stage's deadline is 核实's (due last); the highest rung any deadline reached.
    assert c["承诺时限"] == china(monday_end) and a["督办升级级别"] == c["督办升级级别"] == "2"

    # 表11: exactly one row per reminder, escalation and supervisor's reminder whose notices were written.
    ids = [int(r["监察编号"].removeprefix("HCP-")) for r in rows11]
    assert len(ids) == len(set(ids))
    assert set(await event_keys(world, ids)) == await supervision_notices(world)
    mine = [r for r in rows11 if r["工单编号"] == str(late.case_id)]
    assert [(r["监察预警类型代码"], r["监察规则编号"], r["督办级别"]) for r in mine] == [
        ("4", "", ""), ("1", "01-1-1", ""), ("2", "01-2-1", "1"), ("3", "01-3-2", "2"), ("1", "02-1-1", ""),
        ("2", "02-2-1", "1"),
    ]  # fmt: skip
    fri, sat, sun = (thursday + timedelta(days=n) for n in (1, 2, 3))
    assert [r["状态产生时间"][:12] for r in mine[1:4]] == [
        fri.strftime("%Y%m%d") + "2000",
        sat.strftime("%Y%m%d") + "0000",
        sun.strftime("%Y%m%d") + "0000",
    ]
    assert mine[0]["督办内容"] == "督办提醒：请尽快回访" and mine[0]["监察预警类型"] == "督办提醒"
    assert (
        mine[1]["督办内容"]
        == f"「回访」时限将至（{friday_end - timedelta(days=1):%Y-%m-%d} 24:00），请及时办理（第1次提醒）"
    )
    assert "第2级督办，已通知政务服务管理机构" in mine[3]["督办内容"]
    assert mine[3]["监察结果描述"] == "已通知 1 人（已发送 1 条）；已超期办结该环节"
    for row in mine:
        assert row["机构名称"] == row["责任部门"] == "烟台市市场监督管理局" and row["事项类型代码"] == "01"
        assert len(row["督办发出时间"]) == 14 and row["督办发出时间"].isdigit()
    assert {r["事项类型代码"] for r in rows11 if r["工单编号"] == str(other.case_id)} == {"20"}  # 公共服务

    # No rater's name, phone or email anywhere, not even masked.
    for body in (t10.content.decode("utf-8"), t11.content.decode("utf-8")):
        for value in [*RATER.values(), "张**"]:
            assert value not in body

    # A supervisor of 人社局 gets only 人社局's case and its rows; asking for another unit is refused.
    made = await world.api.post("/api/v1/admin/users", json=RSJ_SUPERVISOR, headers=admin)
    assert made.status_code == 201, made.text
    rsj = await login(world.api, RSJ_SUPERVISOR["username"], RSJ_SUPERVISOR["password"])
    scoped10 = rows_of(await world.api.get(f"/api/v1/exports/table10.csv?{period}", headers=rsj))
    scoped11 = rows_of(await world.api.get(f"/api/v1/exports/table11.csv?{period}", headers=rsj))
    assert [r["办件编号"] for r in scoped10] == ["DEMO-0003"]
    assert scoped11 and {r["工单编号"] for r in scoped11} == {str(other.case_id)}
    assert scoped11 == [r for r in rows11 if r["工单编号"] == str(other.case_id)]
    outside = await world.api.get(f"/api/v1/exports/table11.csv?{period}&unit_id=2", headers=rsj)
    assert outside.status_code == 403 and outside.json()["detail"]["field"] == "unit_id"
    supervisor = await login(world.api, "supervisor", world.demo.passwords["supervisor"])
    by_unit = rows_of(await world.api.get(f"/api/v1/exports/table10.csv?{period}&unit_id=2", headers=supervisor))
    assert [r["办件编号"] for r in by_unit] == ["DEMO-0001", "DEMO-0002"]

    # The command writes the same bytes as the API; its progress goes to standard error.
    first, last = date.today() - timedelta(days=1), (thursday + timedelta(days=10)).date()
    out, said = await _command(world.settings, "--table", "11", "--from", str(first), "--to", str(last))
    assert out == t11.content and f"表11: {len(rows11)} row(s) exported" in said
    target = tmp_path / "表10.csv"
    _, said = await _command(world.settings, "--table", "10", "--from", str(first), "--to", str(last),
                             "--unit", "YT-RSJ", "--output", str(target))  # fmt: skip
    assert [r["办件编号"] for r in csv.DictReader(io.StringIO(target.read_text("utf-8-sig"), newline=""))] == [
        "DEMO-0003"
    ]

    # One audit record per export (the refused one has none): who, which table, which filter.
    tables10 = await audits(world, "export.cases_table10")
    tables11 = await audits(world, "export.supervision_table11")
    assert [(e.actor_role, e.after.get("unit_id")) for e in tables10] == [
        ("admin", None), ("supervisor", None), ("supervisor", 2), ("", None)]  # fmt: skip
    assert [e.actor for e in tables11] == ["user:1", f"user:{made.json()['id']}", "system"]
    assert tables10[-1].after == {"from": str(first), "to": str(last), "unit": "YT-RSJ"}


async def _command(settings: Settings, *args: str) -> tuple[bytes, str]:
    env = {**os.environ, "HCP_DATABASE_URL": settings.sqlalchemy_url, "HCP_DATA_DIR": str(settings.data_dir)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runtime.export_cases", *args, cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out, err.decode()


async def test_the_export_refuses_bad_filters_and_callers_without_auditing(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    base = "/api/v1/exports/table10.csv"
    backwards = await offline_api.get(f"{base}?from=2026-11-22&to=2026-11-20", headers=admin)
    assert backwards.status_code == 422 and backwards.json()["detail"]["field"] == "to"
    too_long = await offline_api.get(f"{base}?from=2025-01-01&to=2026-11-20", headers=admin)
    assert too_long.status_code == 422 and "366" in too_long.json()["detail"]["message"]
    unknown = await offline_api.get(f"{base}?from=2026-11-01&to=2026-11-20&unit_id=999", headers=admin)
    assert unknown.status_code == 422 and unknown.json()["detail"]["field"] == "unit_id"
    region = await offline_api.get(f"{base}?from=2026-11-01&to=2026-11-20&region=999999", headers=admin)
    assert region.status_code == 422 and "999999" in region.json()["detail"]["message"]
    missing = await offline_api.get(f"{base}?to=2026-11-20", headers=admin)
    assert missing.status_code == 422
    for username in ("scj_staff", "reviewer"):
        other = await login(offline_api, username, demo.passwords[username])
        refused = await offline_api.get(f"{base}?from=2026-11-01&to=2026-11-20", headers=other)
        assert refused.status_code == 403 and refused.json()["detail"]["code"] == "export_not_allowed"
    assert (await offline_api.get(f"{base}?from=2026-11-01&to=2026-11-20")).status_code == 401
    empty = await offline_api.get(f"{base}?from=2026-11-01&to=2026-11-20&region=370600", headers=admin)
    assert rows_of(empty) == []
    async with db.session() as session:
        exports = (await session.exec(select(AuditEvent).where(col(AuditEvent.action).like("export.%")))).all()
    assert [(e.action, e.target_id) for e in exports] == [("export.cases_table10", "2026-11-01..2026-11-20")]


def _view(name: DeadlineName, due: datetime, state: str, rung: int = 0) -> DeadlineView:
    return DeadlineView(name=name, started_at=due - timedelta(days=1), due_at=due, state=state, rung=rung)


def test_overdue_days_count_working_days_once_and_end_at_the_stop() -> None:
    weekends = LoadedCalendar({2031: (set(), set())})
    friday_end = datetime(2031, 1, 11, tzinfo=CHINA_TZ)  # Friday 10 January 2031, 24:00
    tuesday = datetime(2031, 1, 14, 10, tzinfo=CHINA_TZ)
    running = _view(DeadlineName.VERIFICATION, friday_end, "overdue", rung=1)
    assert overdue_days([running], [], tuesday, weekends) == 2  # Monday and Tuesday; the weekend does not count
    assert overdue_days([running], [], friday_end, weekends) == 0  # due is not yet late
    assert overdue_days([running], [], datetime(2031, 1, 12, 9, tzinfo=CHINA_TZ), weekends) == 0  # Saturday only
    # Two deadlines late on the same days count them once (one fell due at Monday noon: Monday counts whole).
    monday_noon = datetime(2031, 1, 13, 12, tzinfo=CHINA_TZ)
    both = [running, _view(DeadlineName.CALLBACK, monday_noon, "overdue", rung=1)]
    assert overdue_days(both, [], tuesday, weekends) == 2
    # A deadline met late stops counting at the event that stopped it; one met in time or cancelled unescalated never counts.
    done = CaseEvent(case_id=1, event_key="0009-verified", stage=Stage.RECTIFICATION, action="verified",
                     actor="user:4", at=datetime(2031, 1, 13, 9, tzinfo=CHINA_TZ))  # fmt: skip
    met_late = _view(DeadlineName.VERIFICATION, friday_end, "met_late", rung=1)
    assert overdue_days([met_late], [done], tuesday, weekends) == 1
    assert overdue_days([_view(DeadlineName.VERIFICATION, friday_end, "cancelled")], [done], tuesday, weekends) == 0
    assert overdue_days([_view(DeadlineName.VERIFICATION, friday_end, "met")], [], tuesday, weekends) == 0


def test_the_warning_codes_are_data_and_a_gap_is_refused(tmp_path: Path) -> None:
    codes = table11_codes()
    assert codes.warning("reminder").code == "1" and codes.warning("escalation", 1).code == "2"
    assert codes.warning("escalation", 5).code == "3" and codes.warning("supervisor_reminder").code == "4"
    assert codes.rule_number("rectification_ledger_max", codes.warning("escalation", 2), 2) == "04-3-2"
    assert codes.item_type_code("行政许可") == "01" and codes.item_type_code("未知类型") == ""
    broken = tmp_path / "table11.toml"
    text = (PROJECT_ROOT / "policy/codes/national/table11.toml").read_text("utf-8")
    broken.write_text(text.replace("rungs = [2, 3, 4, 5]", "rungs = [2, 3]"), "utf-8")
    with pytest.raises(ValueError, match=r"table11\.toml: warning_types: .*rungs .*4"):
        load_table11_codes(broken)
    broken.write_text(text.replace('code = "4"', 'code = "44"'), "utf-8")
    with pytest.raises(ValueError, match=r"warning_types\.codes\.3\.code"):
        load_table11_codes(broken)
