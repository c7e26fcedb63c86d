"""Many clerks on one case at once, and one clerk sending every form twice: each step is taken once.

On the Temporal dev server through the API and the case page's forms, on both databases: eight
sessions of the unit's staff click the same step of the same case at once; one clerk sends each form
of a full case twice at once, with one Idempotency-Key and with two different keys; the same through
the pages (CSRF token and the form's own request key). Effects are counted where they land: timeline
events, audit rows, request rows, notice rows, mails in the SMTP sink and SMS files.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.audit import AuditEvent
from models.case.records import CaseEvent
from models.case.requests import CaseStepRequest
from models.case.steps import STEPS_BY_NAME
from models.credentials import hash_password
from models.db import Database
from models.notifications import NoticeStatus, Notification
from models.roles import Role
from models.users import User
from runtime.mail_sink import MailSink
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.http import RATER, login
from tests.support.http_case import open_case
from tests.support.pages import form_csrf, page_login
from tests.support.services import api_client, running_worker
from tests.support.waiting import eventually

CLERKS = 8
CLERK_PASSWORD = "clerk-password-8chars"
# Why a click that lost is refused, as the 409 says it: the stage moved on, or the request is pending.
STAGE_MOVED = r"阶段"
REFUSAL_REASON = {
    "accept": STAGE_MOVED,
    "verification": STAGE_MOVED,
    "rectification": STAGE_MOVED,
    "feedback": r"反馈已提交|阶段",
    "extension-requests": r"已有一项延期申请待审批",
    "ledger": r"已列入台账|阶段",
    "explanation": STAGE_MOVED,
    "appeal": STAGE_MOVED,
    "cannot-rectify-requests": r"已有一项无法整改申请待审批",
    "deadline-extension": r"已延期至该时间",
    "reassignment": r"已由该单位承办",
}
VERIFY = {"verdict": "valid", "findings": "当日仅开一个窗口，属实", "judgement": "reasonable"}


@pytest.fixture
def patient(settings: Settings) -> Settings:
    # Eight Updates of one case queue behind its step lock on a shared 2-core machine: wait long enough
    # that every click gets its final answer (200 or 409) rather than a 202 "still finishing".
    return settings.model_copy(update={"case_action_wait_seconds": 30.0})


@asynccontextmanager
async def _stack(env: WorkflowEnvironment, settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    temporal = TemporalConnection(settings, client=env.client)
    async with running_worker(env.client, settings, db), api_client(settings, db, temporal) as api:
        yield api


async def _clerk_sessions(api: httpx.AsyncClient, db: Database, demo: DemoCredentials) -> list[dict[str, str]]:
    """Bearer headers of CLERKS people of the unit (市场监管局): scj_staff and colleagues added here."""
    async with db.session() as session:
        unit_id = (await session.exec(select(User.unit_id).where(User.username == "scj_staff"))).one()
        password_hash = hash_password(CLERK_PASSWORD)
        for n in range(2, CLERKS + 1):
            session.add(
                User(
                    username=f"scj_clerk{n}",
                    display_name=f"市场监管局 承办{n}",
                    email=f"scj{n}@hcp.localhost",
                    password_hash=password_hash,
                    role=Role.UNIT_STAFF,
                    unit_id=unit_id,
                )
            )
        await session.commit()
    sessions = [await login(api, "scj_staff", demo.passwords["scj_staff"])]
    return sessions + [await login(api, f"scj_clerk{n}", CLERK_PASSWORD) for n in range(2, CLERKS + 1)]


async def _count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(model).where(*where))).one())


async def _effects(db: Database, case_id: int, step: str) -> tuple[int, int, int]:
    """(timeline events, audit rows, completed request rows) one step left on a case."""
    events = await _count(
        db, CaseEvent, CaseEvent.case_id == case_id, col(CaseEvent.action).in_(STEPS_BY_NAME[step].records)
    )
    audits = await _count(db, AuditEvent, AuditEvent.action == f"case.{step}", AuditEvent.target_id == str(case_id))
    completed = await _count(
        db,
        CaseStepRequest,
        CaseStepRequest.case_id == case_id,
        CaseStepRequest.action == step,
        col(CaseStepRequest.completed_at).is_not(None),
    )
    return events, audits, completed


async def _sent_notices(db: Database, case_id: int, kind: str, count: int) -> list[Notification]:
    """The case's notices of a kind, once `count` exist and every one is sent."""

    async def sent() -> list[Notification] | None:
        async with db.session() as session:
            rows = list(
                (
                    await session.exec(
                        select(Notification).where(Notification.case_id == case_id, Notification.kind == kind)
                    )
                ).all()
            )
        return rows if len(rows) >= count and all(n.status == NoticeStatus.SENT for n in rows) else None

    rows = await eventually(sent, timeout=30)
    assert len(rows) == count, [(n.channel, n.recipient_ref) for n in rows]
    return rows


def _mails_of_case(mailbox: MailSink, address: str, case_id: int, kind_key: str) -> list[str]:
    """Message-IDs of the mails to one address about one case and notice (the Message-ID carries the notice key)."""
    prefix = Notification(dedup_key=f"case{case_id}.{kind_key}", kind="", recipient_ref="").message_id[: -len("@hcp>")]
    return [str(m["Message-ID"]) for m in mailbox.to(address) if str(m["Message-ID"]).startswith(prefix)]


def _sms_of_case(settings: Settings, case_id: int) -> list[str]:
    return [p.name for p in settings.sms_dir.glob(f"case{case_id}.*.txt")]


def _assert_one_taken(answers: list[httpx.Response], step: str) -> None:
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * (len(answers) - 1), [(a.status_code, a.text[:200]) for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            detail = answer.json()["detail"]
            assert detail["code"] in ("wrong_stage", "already_taken"), detail
            assert re.search(REFUSAL_REASON[step], detail["message"]), detail


async def _due(api: httpx.AsyncClient, case_id: int, staff: dict[str, str], deadline: str) -> datetime:
    case = (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()
    found = [d for d in case["deadlines"] if d["name"] == deadline and d["state"] in ("running", "overdue")]
    assert found, case["deadlines"]
    return datetime.fromisoformat(found[-1]["due_at"])


async def test_eight_clerks_click_the_same_step_at_once_one_is_taken(
    dev_server: WorkflowEnvironment, patient: Settings, db: Database, demo: DemoCredentials, mailbox: MailSink
) -> None:
    async with _stack(dev_server, patient, db) as api:
        clerks = await _clerk_sessions(api, db, demo)
        case_id = await open_case(api, demo, clerks[0], timeout=30)

        async def race(step: str, body: dict[str, Any]) -> None:
            answers = await asyncio.gather(
                *(
                    api.post(
                        f"/api/v1/cases/{case_id}/{step}",
                        json=body,
                        headers={**clerk, "Idempotency-Key": f"{step}-{n}"},
                    )
                    for n, clerk in enumerate(clerks)
                )
            )
            _assert_one_taken(list(answers), step)
            # Eight requests were written, one was completed: one event, one audit row.
            assert (
                await _count(db, CaseStepRequest, CaseStepRequest.case_id == case_id, CaseStepRequest.action == step)
                == CLERKS
            )
            assert await _effects(db, case_id, step) == (1, 1, 1), step

        await race("accept", {"note": "签收"})
        callback = await api.post(
            f"/api/v1/cases/{case_id}/callbacks", json={"reached": True, "note": "已致电"}, headers=clerks[1]
        )
        assert callback.status_code == 200, callback.text
        await race("verification", VERIFY)
        due = await _due(api, case_id, clerks[0], "rectification_immediate")
        extension = {
            "deadline": "rectification_immediate",
            "new_due_at": (due + timedelta(days=3)).isoformat(),
            "reason": "需采购设备",
        }
        await race("extension-requests", extension)
        await race("rectification", {"measures": "增开两个窗口"})
        await race("feedback", {"message": "我局已增开两个企业登记窗口。"})

        # One notice each: the supervisor hears of the extension request once, the rater of the result once.
        [to_supervisor] = await _sent_notices(db, case_id, "extension_requested", 1)
        assert to_supervisor.recipient_ref == "user:2"
        await _sent_notices(db, case_id, "feedback", 2)  # one email, one SMS
    assert len(_mails_of_case(mailbox, "supervisor@hcp.localhost", case_id, "extension")) == 1
    assert len(_mails_of_case(mailbox, RATER["email"], case_id, "feedback")) == 1
    assert len(_sms_of_case(patient, case_id)) == 1
    # Nobody else was told anything: the clerks' clicks that lost sent no mail.
    assert len(mailbox.messages) == 2


async def test_a_supervisor_sends_an_extension_and_a_reassignment_twice_at_once(
    dev_server: WorkflowEnvironment, patient: Settings, db: Database, demo: DemoCredentials, mailbox: MailSink
) -> None:
    async with _stack(dev_server, patient, db) as api:
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        supervisor = await login(api, "supervisor", demo.passwords["supervisor"])
        case_id = await open_case(api, demo, staff, timeout=30)
        due = await _due(api, case_id, staff, "verification")
        extend = {
            "deadline": "verification",
            "new_due_at": (due + timedelta(days=2)).isoformat(),
            "reason": "节前人手紧张",
        }
        reassign = {"to_unit_id": 3, "reason": "属人社局职责"}
        for step, body in (("deadline-extension", extend), ("reassignment", reassign)):
            # Sent from two tabs: the repeat is told the step was taken, not that its date or unit is wrong.
            answers = await asyncio.gather(
                *(
                    api.post(
                        f"/api/v1/cases/{case_id}/{step}", json=body, headers={**supervisor, "Idempotency-Key": key}
                    )
                    for key in (f"{step}-1", f"{step}-2")
                )
            )
            _assert_one_taken(list(answers), step)
            assert {a.json()["detail"]["code"] for a in answers if a.status_code == 409} == {"already_taken"}
            assert await _effects(db, case_id, step) == (1, 1, 1), step
        # The new unit's staff hear of the case once.
        [notice] = await _sent_notices(db, case_id, "reassigned", 1)
        assert notice.recipient_ref == "user:5"
    assert len(_mails_of_case(mailbox, "rsj@hcp.localhost", case_id, "reassigned")) == 1
    assert len(mailbox.messages) == 1


Steps = tuple[tuple[str, dict[str, Any]], ...]
ACCEPT_AND_CALL: Steps = (("accept", {"note": "签收"}), ("callbacks", {"reached": True, "note": "已致电致歉"}))
# Each way through a case, every form the clerk fills on it, and the notices it sends:
# (kind, how many rows, the address that gets the mail, the notice key's start).
FULL_CASES: dict[str, tuple[Steps, tuple[tuple[str, int, str, str], ...]]] = {
    "rectified": (
        (
            *ACCEPT_AND_CALL,
            ("verification", VERIFY),
            ("ledger", {"plan": "增设窗口需采购设备"}),  # due_at: the latest the policy allows, filled in below
            (
                "extension-requests",
                {"deadline": "rectification_ledger_max", "reason": "设备到货延迟"},
            ),  # new_due_at too
            ("rectification", {"measures": "增开两个窗口"}),
            ("feedback", {"message": "我局已增开两个企业登记窗口。"}),
        ),
        (
            ("extension_requested", 1, "supervisor@hcp.localhost", "extension"),
            ("feedback", 2, RATER["email"], "feedback"),  # an email and an SMS
        ),
    ),
    "explained": (
        (
            *ACCEPT_AND_CALL,
            ("verification", {"verdict": "no_legal_basis", "findings": "须本人到场", "judgement": "unreasonable"}),
            ("explanation", {"explanation": "该事项须本人到场办理，系法定要求。"}),
            ("feedback", {"message": "已向您说明须本人到场办理的法定要求。"}),
        ),
        (("feedback", 2, RATER["email"], "feedback"),),
    ),
    "appealed": (
        (
            *ACCEPT_AND_CALL,
            ("verification", {"verdict": "disputed", "findings": "监控显示无排队", "judgement": "unreasonable"}),
            ("appeal", {"reason": "评价与事实不符", "evidence": ["大厅监控录像"]}),
        ),
        (("appeal_filed", 1, "reviewer@hcp.localhost", "appeal"),),
    ),
    "cannot_rectify": (
        (
            *ACCEPT_AND_CALL,
            ("verification", VERIFY),
            ("cannot-rectify-requests", {"reasons": "涉及跨部门系统改造", "explanation": "需省级系统升级"}),
        ),
        (("cannot_rectify_requested", 1, "supervisor@hcp.localhost", "cannot_rectify"),),
    ),
}


async def _full_case_twice(
    api: httpx.AsyncClient, db: Database, staff: dict[str, str], case_id: int, steps: Steps, same_key: bool
) -> None:
    """Send every form of a full case twice at once: under one key, or under two different keys."""
    ledger_due: datetime | None = None
    snapshot: dict[str, Any] = {}
    for step, fields in steps:
        body = dict(fields)
        if step == "ledger":
            # The latest due date the policy allows, as the verification's answer gave it.
            ledger_due = datetime.fromisoformat(snapshot["ledger_latest_due"]) - timedelta(hours=1)
            body["due_at"] = ledger_due.isoformat()
        if step == "extension-requests":
            assert ledger_due is not None
            body["new_due_at"] = (ledger_due + timedelta(days=3)).isoformat()
        keys = [f"{step}-once", f"{step}-once"] if same_key else [f"{step}-first", f"{step}-second"]
        answers = await asyncio.gather(
            *(
                api.post(f"/api/v1/cases/{case_id}/{step}", json=body, headers={**staff, "Idempotency-Key": key})
                for key in keys
            )
        )
        snapshot = next(a.json() for a in answers if a.status_code == 200)
        if same_key:
            # The repeat gets the first answer: same status, same body; one request row.
            assert [a.status_code for a in answers] == [200, 200], [(a.status_code, a.text) for a in answers]
            assert answers[0].json() == answers[1].json(), step
            rows = await _count(db, CaseStepRequest, CaseStepRequest.case_id == case_id, CaseStepRequest.action == step)
            assert rows == 1, step
            assert await _effects(db, case_id, step) == (1, 1, 1), step
        elif step == "callbacks":
            # A callback is a log entry: a case may record several calls to the rater. Two sends under two
            # keys are two calls (the client said they differ), each audited once.
            assert [a.status_code for a in answers] == [200, 200], [(a.status_code, a.text) for a in answers]
            assert await _effects(db, case_id, step) == (2, 2, 2)
        else:
            _assert_one_taken(list(answers), step)
            assert await _effects(db, case_id, step) == (1, 1, 1), step


@pytest.mark.parametrize("way", FULL_CASES)
async def test_one_clerk_sends_every_form_of_a_case_twice_at_once(
    dev_server: WorkflowEnvironment,
    patient: Settings,
    db: Database,
    demo: DemoCredentials,
    mailbox: MailSink,
    way: str,
) -> None:
    steps, notices = FULL_CASES[way]
    async with _stack(dev_server, patient, db) as api:
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        # Two cases of one rater (the same person hears of both): one per way of sending twice.
        same = await open_case(api, demo, staff, timeout=30, record_no="DEMO-0001")
        different = await open_case(api, demo, staff, timeout=30, record_no="DEMO-0002")
        await _full_case_twice(api, db, staff, same, steps, same_key=True)
        await _full_case_twice(api, db, staff, different, steps, same_key=False)
        for case_id in (same, different):
            for kind, rows, _, _ in notices:
                await _sent_notices(db, case_id, kind, rows)
    for case_id in (same, different):
        for _, _, address, key in notices:
            assert len(_mails_of_case(mailbox, address, case_id, key)) == 1, (case_id, key)
        assert len(_sms_of_case(patient, case_id)) == sum(rows - 1 for _, rows, _, _ in notices)
    assert len(mailbox.messages) == 2 * len(notices)


def _form_key(page: httpx.Response, step: str) -> str:
    """The request key of one step's form on a rendered case page (a new one each time the page is drawn)."""
    found = re.search(rf'id="step-{re.escape(step)}".*?name="request_key" value="([0-9a-f]+)"', page.text, re.S)
    assert found, page.text[:2000]
    return found.group(1)


async def _page_twice(
    api: httpx.AsyncClient, case_id: int, step: str, fields: dict[str, str], same_key: bool
) -> list[httpx.Response]:
    """Post a step's form twice at once: one drawn form sent twice (a double click), or two drawn forms (two tabs)."""
    first = await api.get(f"/cases/{case_id}")
    second = first if same_key else await api.get(f"/cases/{case_id}")
    forms = [{**fields, "csrf": form_csrf(page), "request_key": _form_key(page, step)} for page in (first, second)]
    if not same_key:
        assert forms[0]["request_key"] != forms[1]["request_key"]
    return list(await asyncio.gather(*(api.post(f"/cases/{case_id}/steps/{step}", data=form) for form in forms)))


async def test_page_forms_sent_twice_take_the_step_once(
    dev_server: WorkflowEnvironment, patient: Settings, db: Database, demo: DemoCredentials, mailbox: MailSink
) -> None:
    async with _stack(dev_server, patient, db) as api:
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        same = await open_case(api, demo, staff, timeout=30, record_no="DEMO-0001")
        different = await open_case(api, demo, staff, timeout=30, record_no="DEMO-0002")
        signed = await page_login(api, "scj_staff", demo.passwords["scj_staff"])
        assert signed.status_code == 303
        for case_id, same_key in ((same, True), (different, False)):
            for step, fields in (("accept", {"note": "已签收"}), ("feedback", {"message": "我局已增开窗口。"})):
                if step == "feedback":
                    for path, body in (
                        ("callbacks", {"reached": True, "note": "已致电"}),
                        ("verification", VERIFY),
                        ("rectification", {"measures": "增开窗口"}),
                    ):
                        taken = await api.post(f"/api/v1/cases/{case_id}/{path}", json=body, headers=staff)
                        assert taken.status_code == 200, taken.text
                answers = await _page_twice(api, case_id, step, fields, same_key)
                done = f"/cases/{case_id}?done={step}"
                if same_key:
                    # A double click: both posts answer as the one step taken.
                    assert [(a.status_code, a.headers.get("location")) for a in answers] == [(303, done)] * 2
                else:
                    taken, refused = sorted(answers, key=lambda a: a.status_code)
                    assert (taken.status_code, taken.headers["location"]) == (303, done)
                    label = STEPS_BY_NAME[step].label
                    assert refused.status_code == 409 and f"「{label}」未办理" in refused.text, refused.text[:2000]
                    assert "工单当前阶段" in refused.text
                assert await _effects(db, case_id, step) == (1, 1, 1), (case_id, step)
                keys = await _count(
                    db, CaseStepRequest, CaseStepRequest.case_id == case_id, CaseStepRequest.action == step
                )
                assert keys == (1 if same_key else 2)
            await _sent_notices(db, case_id, "feedback", 2)
    for case_id in (same, different):
        assert len(_mails_of_case(mailbox, RATER["email"], case_id, "feedback")) == 1
        assert len(_sms_of_case(patient, case_id)) == 1
    assert len(mailbox.messages) == 2
