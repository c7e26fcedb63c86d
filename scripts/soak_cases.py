"""The soak's people working a case: clerks, a supervisor, a reviewer, and the rater answering by the emailed link.

Each bad rating's case gets a plan, drawn from the seed, that people would follow: rectify and feed
back (the rater satisfied, or not and the case reopened), explain, appeal (the reviewer decides),
work under a supervisor (remind, extension requested and approved, instruction, ledger), be reassigned
to another unit and have a deadline extended, or lie untouched while its clocks remind and escalate.
A plan's steps are taken one after another, so every step the API refuses is a fault of the system.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn

import httpx
from soak_client import GIVE_UP_AFTER, Answer, CaseInfo, Client, GaveUp, Person, StepTaken

from runtime.mail_sink import MailSink, message_text

PLANS = {"rectify": 34, "reopen": 10, "explain": 12, "appeal": 6, "supervised": 14, "reassigned": 10, "idle": 14}
VERIFY_VALID = {"verdict": "valid", "findings": "当日仅开一个窗口，属实", "judgement": "reasonable"}
_LINK = re.compile(r"/r/([A-Za-z0-9_-]+)")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Stopped(Exception):
    """The load is over: the case is left where it stands."""


class Refused(Exception):
    """A step the API did not take (already in the ledger's faults): the plan cannot go on."""


class CaseWork:
    """The people of the soak and the cases they work; `stopping` ends every plan at its next step."""

    def __init__(
        self,
        client: Client,
        people: dict[str, Person],
        units: dict[str, int],
        sink: MailSink,
        think: float,
    ) -> None:
        self.client, self.ledger = client, client.ledger
        self.people, self.units, self.sink = people, units, sink
        self.clerks = {units["YT-SCJ"]: people["scj_staff"], units["YT-RSJ"]: people["rsj_staff"]}
        self.think = think  # the longest pause between two steps of a case, in seconds
        self.stopping = asyncio.Event()

    async def work(self, case: CaseInfo) -> None:
        """Draw the case's plan and follow it, once its workflow has started."""
        plan = case.rng.choices(list(PLANS), weights=list(PLANS.values()))[0]
        if plan == "reopen" and case.rater_email is None:
            plan = "rectify"  # nobody to say "not satisfied"
        self.ledger.plans[plan] += 1
        await self._until(lambda: self._started(case), "the case workflow to start")
        await getattr(self, f"_plan_{plan}")(case)

    async def _plan_rectify(self, case: CaseInfo, satisfied: bool = True) -> None:
        await self._verify(case, VERIFY_VALID)
        await self.step(case, "rectification", {"measures": "增开两个窗口，推行预约办理"})
        await self.step(case, "feedback", {"message": "我局已增开两个企业登记窗口，并推行预约办理。"})
        await self.rater_answers(case, satisfied)

    async def _plan_reopen(self, case: CaseInfo) -> None:
        await self._plan_rectify(case, satisfied=False)
        await self._until(lambda: self._in(case, "assigned", round_=2), "the reopened round")
        case.round = 2
        await self._plan_rectify(case)

    async def _plan_explain(self, case: CaseInfo) -> None:
        await self._verify(
            case, {"verdict": "no_legal_basis", "findings": "诉求无政策依据", "judgement": "unreasonable"}
        )
        await self.step(case, "explanation", {"explanation": "该事项须本人到场办理，系法定要求。"})
        await self.step(case, "feedback", {"message": "已向您说明该事项须本人到场办理的法定要求。"})
        # The rater stays silent: the case waits for the answer window to run out.

    async def _plan_appeal(self, case: CaseInfo) -> None:
        await self._verify(case, {"verdict": "disputed", "findings": "监控显示当日无排队", "judgement": "unreasonable"})
        await self.step(case, "appeal", {"reason": "评价与事实不符", "evidence": ["大厅监控录像"]})
        await self.step(
            case, "appeal-decision", {"upheld": True, "reason": "证据充分，不予采纳"}, self.people["reviewer"]
        )

    async def _plan_supervised(self, case: CaseInfo) -> None:
        supervisor = self.people["supervisor"]
        await self.step(case, "reminders", {"message": "请尽快签收并回访"}, supervisor)
        await self.step(case, "accept", {"note": "已签收"})
        deadline = "callback" if case.rater_email else "verification"
        new_due = (await self._due(case, deadline) + timedelta(minutes=10)).isoformat()
        await self.step(
            case, "extension-requests", {"deadline": deadline, "new_due_at": new_due, "reason": "评价人出差"}
        )
        await self.step(case, "extension-decision", {"approve": True, "note": "同意延期"}, supervisor)
        await self.step(case, "instructions", {"instruction": "整改情况报督办科"}, supervisor)
        await self._verify(case, VERIFY_VALID, accepted=True)
        latest = await self._ledger_latest(case)
        await self.step(case, "ledger", {"due_at": (latest - timedelta(minutes=2)).isoformat(), "plan": "采购叫号设备"})
        await self.step(case, "rectification", {"measures": "叫号设备已安装"})
        await self.step(case, "feedback", {"message": "叫号设备已安装，排队时间已缩短。"})
        await self.rater_answers(case, True)

    async def _plan_reassigned(self, case: CaseInfo) -> None:
        supervisor = self.people["supervisor"]
        other = next(unit for unit in self.clerks if unit != case.unit_id)
        await self.step(case, "reassignment", {"to_unit_id": other, "reason": "属另一单位职责"}, supervisor)
        case.unit_id = other
        await self.step(case, "accept", {"note": "已签收改派工单"})
        new_due = (await self._due(case, "verification") + timedelta(minutes=10)).isoformat()
        extend = {"deadline": "verification", "new_due_at": new_due, "reason": "改派后需重新核实"}
        await self.step(case, "deadline-extension", extend, supervisor)
        if case.rater_email:
            await self.step(case, "callbacks", {"reached": True, "note": "已致电说明改派"})
        # Left in verification: its clocks go on.

    async def _plan_idle(self, case: CaseInfo) -> None:
        """Nobody acts: the case's clocks remind the unit and escalate to the supervisor."""

    async def _verify(self, case: CaseInfo, verdict: dict[str, Any], accepted: bool = False) -> dict[str, Any]:
        if not accepted:
            await self.step(case, "accept", {"note": "已签收"})
        if case.rater_email:
            if case.rng.random() < 0.3:
                await self.step(case, "callbacks", {"reached": False, "note": "电话未接通"})
            await self.step(case, "callbacks", {"reached": True, "note": "已致电致歉"})
        return await self.step(case, "verification", verdict)

    async def step(self, case: CaseInfo, name: str, body: dict[str, Any], who: Person | None = None) -> dict[str, Any]:
        """Take one step after a pause, as a person would; its answer is the case as the workflow sees it."""
        await self._pause(case)
        who = who or self.clerks[case.unit_id]
        case.steps_sent += 1
        key = f"soak-{case.id}-{case.steps_sent}"
        path = f"/api/v1/cases/{case.id}/{name}"
        not_taken = False
        while True:
            answer = await who.send(f"step {name}", "POST", path, json=body, headers={"Idempotency-Key": key})
            not_taken = not_taken or answer.not_taken
            response = answer.response
            if response.status_code == 202:
                status = await self._settle(case, response.json()["check_url"], who)
                if status["status"] == "not_taken":
                    not_taken = True
                    continue  # never taken: the same request again, under the same key
                if status["status"] != "completed":
                    self._refused(case, name, f"202 then {status}")
                snapshot: dict[str, Any] = {"stage": status["stage"]}
            elif response.status_code == 200:
                snapshot = response.json()
            else:
                self._refused(case, name, f"{response.status_code} {response.text[:300]}")
            self.ledger.steps.append(StepTaken(case.id, name, who.requester, key, not_taken))
            return snapshot

    def _refused(self, case: CaseInfo, name: str, text: str) -> NoReturn:
        self.ledger.fault(f"case {case.id} step {name}: {text}")
        raise Refused

    async def _settle(self, case: CaseInfo, check_url: str, who: Person) -> dict[str, Any]:
        """Where a step answered 202 ended: completed, refused or not taken."""
        while True:
            answer = await who.send("step check", "GET", check_url)
            status: dict[str, Any] = answer.response.json()
            if status["status"] != "in_progress":
                return status
            await asyncio.sleep(0.5)

    # ---- the rater ----

    async def rater_answers(self, case: CaseInfo, satisfied: bool) -> None:
        """The rater opens the link in the round's feedback email and says whether the result is enough."""
        if case.rater_email is None:
            return  # anonymous, no contact: the case closes once the unit has answered
        await self._pause(case)
        token = await self._until(lambda: self._feedback_link(case), f"the feedback email of case {case.id}")
        form = {"satisfied": "yes" if satisfied else "no", "comment": "" if satisfied else "问题仍未解决"}
        lost = False
        while True:
            if self.stopping.is_set():
                raise Stopped
            async with httpx.AsyncClient(timeout=60.0) as browser:  # the rater's own browser: its own cookies
                page = await self.client.send("rater page", "GET", f"/r/{token}", http=browser)
                if page.response.status_code == 410 and lost:
                    break  # used by the answer whose reply was lost
                csrf = _CSRF.search(page.response.text) if page.response.status_code == 200 else None
                if csrf is None:
                    return self.ledger.fault(f"case {case.id} rater page: {page.response.status_code}")
                sent = await self.client.send(
                    "rater answer", "POST", f"/r/{token}", http=browser, retry_503=False,
                    data={**form, "csrf": csrf.group(1)},
                )  # fmt: skip
            lost = lost or sent.lost
            code = sent.response.status_code
            if code in (200, 202) or (code in (409, 410) and lost):
                break
            if code != 503:
                return self.ledger.fault(f"case {case.id} rater answer: {code} {sent.response.text[:300]}")
            await asyncio.sleep(1)  # "not taken": open the link again and answer again
        self.ledger.rater_answers.append((case.id, case.round))

    async def _feedback_link(self, case: CaseInfo) -> str | None:
        """The answer link of the round's feedback email, once the rater has it (its Message-ID names the notice)."""
        prefix = f"<case{case.id}.feedback.r{case.round}."
        for message in list(self.sink.messages):
            if str(message["Message-ID"]).startswith(prefix) and (found := _LINK.search(message_text(message))):
                return found.group(1)
        return None

    # ---- waiting ----

    async def _pause(self, case: CaseInfo) -> None:
        """A person's pause before the next step of a case; Stopped if the load ends meanwhile."""
        try:
            await asyncio.wait_for(self.stopping.wait(), case.rng.uniform(0.3, self.think))
        except TimeoutError:
            return
        raise Stopped

    async def _until(self, check: Callable[[], Awaitable[Any]], what: str, timeout: float = GIVE_UP_AFTER) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.stopping.is_set():
            if value := await check():
                return value
            if asyncio.get_running_loop().time() > deadline:
                self.ledger.fault(f"waited {timeout:.0f}s for {what}")
                raise Refused
            await asyncio.sleep(0.5)
        raise Stopped

    async def _case(self, case: CaseInfo) -> dict[str, Any]:
        answer: Answer = await self.people["supervisor"].send("case page", "GET", f"/api/v1/cases/{case.id}")
        if answer.response.status_code != 200:
            raise GaveUp(f"case {case.id}: {answer.response.status_code}")
        result: dict[str, Any] = answer.response.json()
        return result

    async def _started(self, case: CaseInfo) -> bool:
        return bool((await self._case(case))["workflow_started"])

    async def _in(self, case: CaseInfo, stage: str, round_: int) -> bool:
        found = await self._case(case)
        return bool(found["stage"] == stage and found["round"] == round_)

    async def _ledger_latest(self, case: CaseInfo) -> datetime:
        """The latest due date a ledger may set, as the verification recorded it on the timeline."""
        verified = [e for e in (await self._case(case))["timeline"] if e["action"] == "verified"]
        return datetime.fromisoformat(verified[-1]["data"]["ledger_latest_due"])

    async def _due(self, case: CaseInfo, deadline: str) -> datetime:
        running = [
            d
            for d in (await self._case(case))["deadlines"]
            if d["name"] == deadline and d["state"] in ("running", "overdue")
        ]
        if not running:
            self._refused(case, f"extension of {deadline}", "no such deadline running")
        return datetime.fromisoformat(running[-1]["due_at"])
