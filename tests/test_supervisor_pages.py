"""Supervisors' pages on the real stack: the board, requests awaiting approval, the ledger, CSV exports.

A case falls overdue on the real clock in seconds: the unit puts its rectification on the ledger with
a due time a few seconds ahead (the unit sets that date itself), so nothing has to skip time and every
step still goes through the API and the pages as people would take them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.audit import AuditEvent
from models.db import Database
from models.notifications import Notification
from models.organisation import Unit
from pages.csv_export import csv_cell
from runtime.seed import DemoCredentials
from tests.support.db import case_events, case_row
from tests.support.http_case import VERIFIED, case_at_work, take_steps
from tests.support.pages import page_login, post_step
from tests.support.waiting import eventually

LEDGER_PLAN = '=HYPERLINK("http://evil.example","点击")'  # a plan Excel would run as a formula


def test_cells_that_excel_would_run_are_kept_as_text() -> None:
    for text in ("=1+1", "+86", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
    assert csv_cell("窗口=排队") == "窗口=排队" and csv_cell(None) == "" and csv_cell(7) == "7"


async def _exports(db: Database, action: str) -> list[AuditEvent]:
    async with db.session() as session:
        return list((await session.exec(select(AuditEvent).where(col(AuditEvent.action) == action))).all())


def _csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


async def _pending_section(api: httpx.AsyncClient) -> str:
    board = await api.get("/board")
    assert board.status_code == 200, board.text
    return board.text.split('id="pending"', 1)[1].split('id="overdue"', 1)[0]


async def test_supervisor_chases_an_overdue_case_approves_and_reassigns(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with case_at_work(dev_server, settings, db, demo) as (api, staff, case_id):
        await take_steps(api, case_id, staff, VERIFIED)
        due = datetime.now(UTC) + timedelta(seconds=3)
        ledger_step: dict[str, object] = {"plan": LEDGER_PLAN, "due_at": due.isoformat()}
        await take_steps(api, case_id, staff, (("ledger", ledger_step),))

        async def overdue() -> bool:
            return (await case_row(db, case_id)).overdue

        await eventually(overdue, timeout=20)
        async with db.session() as session:
            rsj = (await session.exec(select(Unit).where(Unit.code == "YT-RSJ"))).one()

        # The unit's staff may not open a supervisor's page, nor export it.
        await page_login(api, "scj_staff", demo.passwords["scj_staff"])
        for path in ("/board", "/board.csv", "/ledger"):
            refused = await api.get(path)
            assert refused.status_code == 403 and "此页面仅供督办人员使用" in refused.text, path
        assert await _exports(db, "export.board") == []

        await page_login(api, "supervisor", demo.passwords["supervisor"])
        board = await api.get("/board")
        assert board.status_code == 200 and f'href="/cases/{case_id}"' in board.text
        assert "督办 1 级" in board.text and "已超期" in board.text
        assert f'href="/cases/{case_id}"' in (await api.get("/board?unit_id=&rung=&stage=&sort=unit")).text
        assert f'href="/cases/{case_id}"' not in (await api.get(f"/board?unit_id={rsj.id}")).text
        assert f'href="/cases/{case_id}"' not in (await api.get("/board?rung=2")).text
        ledger = await api.get("/ledger?state=overdue")
        assert f'href="/cases/{case_id}"' in ledger.text and "HYPERLINK" in ledger.text

        # The exports: the board as filtered, then the ledger, each audited once.
        rows = _csv(await api.get("/board.csv?stage=rectification"))
        assert rows[0][:4] == ["工单编号", "事项名称", "办件编号", "承办单位"] and len(rows) == 2
        assert rows[1][0] == str(case_id) and rows[1][6] == "1" and "已超期" in rows[1][8]
        assert "张三丰" not in str(rows) and "13912345678" not in str(rows)
        [audited] = await _exports(db, "export.board")
        assert audited.actor_role == "supervisor" and audited.after == {
            "filters": {"stage": "rectification", "sort": "rung"}, "rows": 1, "total": 1,
        }  # fmt: skip
        rows = _csv(await api.get("/ledger.csv"))
        assert len(rows) == 2 and rows[1][4] == "'" + LEDGER_PLAN and rows[1][7] == "已逾期"
        assert len(await _exports(db, "export.ledger")) == 1

        # The unit asks for more time: the request waits on the board until the supervisor approves it.
        later = datetime.now(UTC) + timedelta(days=10)
        ask: dict[str, object] = {
            "deadline": "rectification_ledger_max",
            "new_due_at": later.isoformat(),
            "reason": "需采购叫号设备",
        }
        await take_steps(api, case_id, staff, (("extension-requests", ask),))
        pending = await _pending_section(api)
        assert "延期申请" in pending and "需采购叫号设备" in pending
        assert f'href="/cases/{case_id}#step-extension-decision"' in pending
        approved = await post_step(api, case_id, "extension-decision", {"approve": "true", "note": "同意延期"})
        assert approved.status_code == 303, approved.text
        assert "需采购叫号设备" not in await _pending_section(api)
        assert f'href="/cases/{case_id}"' not in (await api.get("/board")).text  # no longer overdue
        assert "按期整改中" in (await api.get("/ledger")).text

        # Two more requests; reassigning the case drops both (the workflow forgets a round's requests).
        cannot: dict[str, object] = {"reasons": "涉及系统改造，本单位无权限", "explanation": "已报上级部门统筹解决"}
        ask["new_due_at"] = (later + timedelta(days=5)).isoformat()
        await take_steps(api, case_id, staff, (("cannot-rectify-requests", cannot), ("extension-requests", ask)))
        pending = await _pending_section(api)
        assert "无法整改申请" in pending and "涉及系统改造" in pending and "需采购叫号设备" in pending
        moved = await post_step(api, case_id, "reassignment", {"to_unit_id": str(rsj.id), "reason": "职责调整"})
        assert moved.status_code == 303, moved.text
        pending = await _pending_section(api)
        assert "涉及系统改造" not in pending and "需采购叫号设备" not in pending and "没有待审批的申请" in pending
        assert "已撤销" in (await api.get("/ledger")).text

        assert [e.action for e in await case_events(db, case_id)].count("reassigned") == 1
        async with db.session() as session:
            notices = (
                await session.exec(
                    select(Notification).where(Notification.case_id == case_id, Notification.kind == "reassigned")
                )
            ).all()
        per_recipient = Counter((n.recipient_ref, n.channel) for n in notices)
        assert per_recipient and set(per_recipient.values()) == {1}, per_recipient
