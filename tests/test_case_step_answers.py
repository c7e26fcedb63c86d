"""A case step's answer is never a guess: taken (200/202), refused (409), or not taken (503) — audited once.

On the Temporal dev server through the API, on both databases: concurrent clicks with one
Idempotency-Key, a key reused for another step, the worker down, a step slowed by a locked row,
two answers on one rater link, and a rater who answers the moment the SMS is written.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from sqlmodel import col, select
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities import build_activities
from activities.sms import FileSmsSink
from config import Settings
from models.audit import AuditEvent
from models.case.activity_io import RecordEventInput
from models.case.vocabulary import ActivityName
from models.db import Database
from models.rater_links import RaterLink
from runtime.seed import DemoCredentials
from runtime.temporal import TemporalConnection
from tests.support.db import case_events
from tests.support.http import RATER, answer_link, csrf_of, login
from tests.support.http_case import TO_FEEDBACK, case_at_work, open_case, take_steps
from tests.support.services import api_client, running_worker
from tests.support.waiting import eventually
from worker import build_worker


async def _audit(db: Database, action: str) -> list[AuditEvent]:
    async with db.session() as session:
        return list((await session.exec(select(AuditEvent).where(AuditEvent.action == action))).all())


async def _actions(db: Database, case_id: int) -> list[str]:
    return [e.action for e in await case_events(db, case_id)]


async def test_concurrent_retries_act_once_and_a_reused_key_changes_nothing(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with case_at_work(dev_server, settings, db, demo) as (api, staff, case_id):
        accepted = await api.post(
            f"/api/v1/cases/{case_id}/accept", json={"note": "签收"}, headers={**staff, "Idempotency-Key": "k-accept"}
        )
        assert accepted.status_code == 200

        # Five clicks at once with one key: one step, five identical answers.
        body = {"reached": True, "note": "已致电"}
        keyed = {**staff, "Idempotency-Key": "k-callback"}
        answers = await asyncio.gather(
            *(api.post(f"/api/v1/cases/{case_id}/callbacks", json=body, headers=keyed) for _ in range(5))
        )
        assert [a.status_code for a in answers] == [200] * 5
        assert len({a.text for a in answers}) == 1

        # The accept's key used for another step: refused, nothing taken, nothing audited.
        reused = await api.post(
            f"/api/v1/cases/{case_id}/callbacks", json=body, headers={**staff, "Idempotency-Key": "k-accept"}
        )
        assert reused.status_code == 422 and reused.json()["detail"]["code"] == "idempotency_key_reused"

        # Two different clicks at once on the same step: one is taken, the other refused as already moved on.
        verdict = {"verdict": "valid", "findings": "属实", "judgement": "reasonable"}
        both = await asyncio.gather(
            *(api.post(f"/api/v1/cases/{case_id}/verification", json=verdict, headers=staff) for _ in range(2))
        )
        assert sorted(r.status_code for r in both) == [200, 409]

        async def recorded() -> list[str] | None:
            actions = await _actions(db, case_id)
            return actions if "verified" in actions else None

        actions = await eventually(recorded)
    assert actions.count("callback") == 1 and actions.count("accepted") == 1 and actions.count("verified") == 1
    assert len(await _audit(db, "case.callbacks")) == 1
    assert len(await _audit(db, "case.accept")) == 1
    assert len(await _audit(db, "case.verification")) == 1


async def test_worker_down_the_step_is_not_taken_and_never_applied_later(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    quick = settings.model_copy(update={"case_action_wait_seconds": 2.0})
    temporal = TemporalConnection(quick, client=dev_server.client)
    async with api_client(quick, db, temporal) as api:
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        # No workflow cache: nothing sticks to a worker that is gone.
        async with running_worker(dev_server.client, quick, db, max_cached_workflows=0):
            case_id = await open_case(api, demo, staff)
        started = asyncio.get_running_loop().time()
        down = await api.post(f"/api/v1/cases/{case_id}/accept", json={"note": "签收"}, headers=staff)
        took = asyncio.get_running_loop().time() - started
        assert down.status_code == 503, down.text
        assert down.json()["detail"]["code"] == "not_taken" and down.headers["retry-after"]
        # The wait (2 s) and the last look for an acceptance (up to 11 s: docs/decisions/0007).
        assert took < 16, f"answered after {took:.1f}s"

        async with running_worker(dev_server.client, quick, db, max_cached_workflows=0):
            # The worker is back and sees the late Update: its validator refuses it, so nothing happens.
            await asyncio.sleep(3)
            assert await _actions(db, case_id) == ["opened"]
            # A fresh request is taken. On a loaded machine the returning worker may not poll within the
            # 2 s wait: that answer is a certain "not taken" (503), and a client retries it, as here.
            for _ in range(5):
                again = await api.post(f"/api/v1/cases/{case_id}/accept", json={"note": "签收"}, headers=staff)
                if again.status_code != 503:
                    break
            assert again.status_code == 200 and again.json()["stage"] == "verification"
    assert (await _actions(db, case_id)) == ["opened", "accepted"]
    assert len(await _audit(db, "case.accept")) == 1


def _stuck_record_worker(client: Any, settings: Settings, db: Database, release: asyncio.Event) -> Any:
    """The real worker, except that timeline writes hang until `release` is set (an activity that is stuck)."""
    activities = build_activities(settings, db)
    real = next(a for a in activities.activities if getattr(a, "__name__", "") == "record_case_event")

    @activity.defn(name=ActivityName.RECORD_CASE_EVENT)
    async def record_case_event(inp: RecordEventInput) -> bool:
        if inp.action != "opened":
            await release.wait()
        return bool(await real(inp))

    activities.activities = [a if a is not real else record_case_event for a in activities.activities]
    return build_worker(client, settings, activities)


async def test_a_slow_step_is_accepted_then_finishes_audited_once(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    quick = settings.model_copy(update={"case_action_wait_seconds": 2.0})
    temporal = TemporalConnection(quick, client=dev_server.client)
    release = asyncio.Event()
    worker = _stuck_record_worker(dev_server.client, quick, db, release)
    async with worker, api_client(quick, db, temporal) as api:
        staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
        case_id = await open_case(api, demo, staff)
        try:
            slow = await api.post(f"/api/v1/cases/{case_id}/accept", json={"note": "签收"}, headers=staff)
            assert slow.status_code == 202, slow.text
            check = slow.json()["check_url"]
            pending = await api.get(check, headers=staff)
            assert pending.status_code == 200 and pending.json()["status"] == "in_progress"
            # Clicked again while it finishes: refused (the case has moved on), or — while the first step's
            # write holds the workflow task that took it — not taken; never a second acceptance.
            again = await api.post(f"/api/v1/cases/{case_id}/accept", json={"note": "签收"}, headers=staff)
            assert again.status_code == 409 or again.json()["detail"]["code"] == "not_taken", again.text
        finally:
            release.set()

        async def done() -> dict[str, Any] | None:
            answer = (await api.get(check, headers=staff)).json()
            return answer if answer["status"] == "completed" else None

        assert (await eventually(done))["stage"] == "verification"
    assert await _actions(db, case_id) == ["opened", "accepted"]
    [audit] = await _audit(db, "case.accept")
    assert audit.actor == "user:4" and audit.after["stage"] == "verification"


async def test_two_answers_on_one_link_the_first_wins_and_the_books_agree(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with case_at_work(dev_server, settings, db, demo) as (api, staff, case_id):
        await take_steps(api, case_id, staff, TO_FEEDBACK)

        async def sms_link() -> str | None:
            found = [re.search(r"/r/([A-Za-z0-9_-]+)", p.read_text()) for p in settings.sms_dir.glob("*.txt")]
            return found[0].group(1) if found and found[0] else None

        token = await eventually(sms_link)
        page = await api.get(f"/r/{token}")
        form = {"csrf": csrf_of(page), "comment": ""}
        yes, no = await asyncio.gather(
            api.post(f"/r/{token}", data={**form, "satisfied": "yes"}),
            api.post(f"/r/{token}", data={**form, "satisfied": "no"}),
        )
        assert sorted([yes.status_code, no.status_code]) == [200, 409], (yes.text, no.text)
        winner = yes.status_code == 200
        assert "已收到" in (no if winner else yes).text

        async def answered() -> list[str] | None:
            actions = await _actions(db, case_id)
            return actions if "rater_responded" in actions else None

        actions = await eventually(answered)
        events = await case_events(db, case_id)
    assert actions.count("rater_responded") == 1
    responded = next(e for e in events if e.action == "rater_responded")
    assert responded.data["satisfied"] is winner
    async with db.session() as session:
        [link] = (await session.exec(select(RaterLink).where(col(RaterLink.case_id) == case_id))).all()
    assert link.answer_satisfied is winner and link.used_at is not None
    rows = await _audit(db, "case.rater_response")
    assert len(rows) == 1 and rows[0].actor == "rater" and rows[0].after["satisfied"] is winner


class _AnsweringSms(FileSmsSink):
    """An SMS gateway whose rater answers the instant the text is written, before the gateway even returns."""

    def __init__(self, settings: Settings, api: httpx.AsyncClient) -> None:
        super().__init__(settings.sms_dir)
        self.api = api
        self.answers: list[httpx.Response] = []

    async def send(self, phone: str, text: str, dedup_key: str) -> None:
        await super().send(phone, text, dedup_key)
        found = re.search(r"/r/([A-Za-z0-9_-]+)", text)
        assert found is not None
        self.answers.append(await answer_link(self.api, found.group(1), satisfied=True))


async def test_an_answer_the_moment_the_sms_is_written_is_taken(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    temporal = TemporalConnection(settings, client=dev_server.client)
    async with api_client(settings, db, temporal) as api:
        sms = _AnsweringSms(settings, api)
        async with running_worker(dev_server.client, settings, db, sms=sms):
            staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
            case_id = await open_case(api, demo, staff)
            await take_steps(api, case_id, staff, TO_FEEDBACK)
            await eventually(lambda: _has(sms.answers))

            async def closed() -> bool:
                return (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()["stage"] == "closed"

            await eventually(closed)
    [answer] = sms.answers
    assert answer.status_code == 200 and "感谢您的确认" in answer.text
    assert RATER["phone"] not in answer.text


async def _has(items: list[Any]) -> bool:
    return bool(items)
