"""Many deadlines falling due in the same minute: how late the reminder and the escalation are recorded and
mailed, next to bare Temporal timers due in the same span.

The cases run under a profile made for the bench in the scratch database only ("bench", a new version
stored as the policy API stores one, from the region's own profile): the verification deadline in minutes
with one reminder before it, escalation rung 1 at the deadline, rung 2 a month later (never reached), no
office hours. The region is switched to it as `PUT /api/v1/regions/{code}/policy` does, so the cases
written next pin it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from bench.harness import BenchStack, summary
from bench.minimal import MINIMAL_TASK_QUEUE, BareTimerWorkflow
from models.db import Database
from models.notifications import Notification
from models.policy import PolicyProfile
from models.policy_store import add_policy_version, latest_policy

BENCH_PROFILE = "bench"


async def install_bench_profile(bs: BenchStack, within_minutes: int, remind_minutes: int) -> None:
    """Store the bench profile (from the seeded region's) and make the region's new cases pin it."""
    (region_code, policy_code), *_ = bs.sql("SELECT code, policy_code FROM region ORDER BY id LIMIT 1")
    db = Database(bs.stack.settings.async_sqlalchemy_url)
    try:
        async with db.session() as session:
            base = await latest_policy(session, str(policy_code))
            assert base is not None
            body = base.profile.model_dump(mode="json")
            body["code"], body["name"] = BENCH_PROFILE, "基准测试（分钟级时限）"
            body["deadlines"]["verification"] |= {
                "within": f"{within_minutes}m",
                "remind_before": [f"{remind_minutes}m"],
                "source": "bench",
            }
            body["escalation"] = [
                {"rung": 1, "notify": "supervisor", "after_overdue": None, "source": "bench"},
                {"rung": 2, "notify": "management_office", "after_overdue": "30d", "source": "bench"},
            ]
            body["office_hours"]["applies_to"] = []
            await add_policy_version(session, PolicyProfile.model_validate(body), None, "open-cases benchmark")
            await session.commit()
    finally:
        await db.dispose()
    bs.sql("UPDATE region SET policy_code = %s WHERE code = %s RETURNING id", BENCH_PROFILE, region_code)


class StampedInbox(list[EmailMessage]):
    """The SMTP sink's message list, noting when each message arrived (wall clock) by its Message-ID."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def append(self, message: EmailMessage) -> None:
        with self._lock:
            self.arrived.setdefault(str(message["Message-ID"]), []).append(time.time())
        super().append(message)


def stamp_inbox(bs: BenchStack) -> StampedInbox:
    """From now on, note every message's arrival time in the stack's SMTP sink."""
    assert bs.stack.sink is not None
    inbox = StampedInbox()
    bs.stack.sink.messages = inbox
    return inbox


@dataclass
class Planned:
    case_id: int
    due_at: datetime
    remind_at: datetime


def planned_instants(bs: BenchStack, since_id: int, remind_minutes: int) -> list[Planned]:
    """Each burst case's verification due time (as the workflow wrote it) and its reminder's instant."""
    plans = []
    for case_id, deadlines in bs.sql('SELECT id, deadlines FROM "case" WHERE id > %s ORDER BY id', since_id):
        assert isinstance(deadlines, list)
        due = next(datetime.fromisoformat(d["due_at"]) for d in deadlines if d["name"] == "verification")
        plans.append(Planned(int(str(case_id)), due, due - timedelta(minutes=remind_minutes)))
    return plans


async def wait_for_burst(bs: BenchStack, since_id: int, cases: int, timeout: float) -> None:
    """Until every case has its reminder and overdue events and both their emails are sent."""
    deadline = time.monotonic() + timeout
    shown = 0.0
    while True:
        events, sent = bs.sql(
            "SELECT (SELECT count(*) FROM caseevent WHERE case_id > %s AND action IN ('reminded', 'overdue')),"
            " (SELECT count(*) FROM notification WHERE case_id > %s AND kind IN ('reminder', 'escalation')"
            "  AND status = 'sent')",
            since_id,
            since_id,
        )[0]
        if int(str(events)) >= 2 * cases and int(str(sent)) >= 2 * cases:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"after {timeout:.0f}s: {events} of {2 * cases} events, {sent} emails sent")
        if time.monotonic() - shown >= 10:
            print(f"  deadlines: {events}/{2 * cases} events recorded, {sent}/{2 * cases} emails sent", flush=True)
            shown = time.monotonic()
        await asyncio.sleep(1.0)


def lateness(bs: BenchStack, since_id: int, plans: list[Planned], inbox: StampedInbox) -> dict[str, Any]:
    """Seconds after the planned instant: events recorded, emails sent, emails received; and the counts."""
    by_case = {p.case_id: p for p in plans}
    planned_for = {"reminded": "remind_at", "overdue": "due_at", "reminder": "remind_at", "escalation": "due_at"}
    recorded: dict[str, list[float]] = {"reminded": [], "overdue": []}
    for case_id, action, recorded_at in bs.sql(
        "SELECT case_id, action, recorded_at FROM caseevent WHERE case_id > %s AND action IN ('reminded', 'overdue')",
        since_id,
    ):
        assert isinstance(recorded_at, datetime)
        planned: datetime = getattr(by_case[int(str(case_id))], planned_for[str(action)])
        recorded[str(action)].append((recorded_at - planned).total_seconds())
    sent: dict[str, list[float]] = {"reminder": [], "escalation": []}
    received: dict[str, list[float]] = {"reminder": [], "escalation": []}
    duplicates = 0
    for case_id, kind, sent_at, key in bs.sql(
        "SELECT case_id, kind, sent_at, dedup_key FROM notification WHERE case_id > %s "
        "AND kind IN ('reminder', 'escalation') AND status = 'sent'",
        since_id,
    ):
        assert isinstance(sent_at, datetime)
        planned = getattr(by_case[int(str(case_id))], planned_for[str(kind)])
        sent[str(kind)].append((sent_at - planned).total_seconds())
        arrivals = inbox.arrived.get(Notification.model_construct(dedup_key=str(key)).message_id, [])
        duplicates += max(len(arrivals) - 1, 0)
        if arrivals:
            received[str(kind)].append(arrivals[0] - planned.timestamp())
    counts = {
        "cases": len(plans),
        "reminded_events": len(recorded["reminded"]),
        "overdue_events": len(recorded["overdue"]),
        "reminder_emails_sent": len(sent["reminder"]),
        "escalation_emails_sent": len(sent["escalation"]),
        "emails_received": len(received["reminder"]) + len(received["escalation"]),
        "emails_received_twice": duplicates,
    }
    expected = {k: len(plans) for k in counts if k not in {"cases", "emails_received", "emails_received_twice"}}
    if any(counts[k] != v for k, v in expected.items()) or counts["emails_received"] != 2 * len(plans) or duplicates:
        raise RuntimeError(f"expected exactly one event and one email of each kind per case, found {counts}")
    due_span = max(p.due_at for p in plans) - min(p.due_at for p in plans)
    return {
        "counts": counts,
        "due_span_s": due_span.total_seconds(),
        "reminder_recorded": summary(recorded["reminded"]),
        "overdue_recorded": summary(recorded["overdue"]),
        "reminder_email_sent": summary(sent["reminder"]),
        "escalation_email_sent": summary(sent["escalation"]),
        "reminder_email_received": summary(received["reminder"]),
        "escalation_email_received": summary(received["escalation"]),
    }


async def bare_timers(bs: BenchStack, count: int, span_s: float, lead_s: float = 60.0) -> dict[str, Any]:
    """`count` BareTimerWorkflows due evenly over `span_s`, the first `lead_s` from now; their lateness."""
    client = await bs.client()
    first = datetime.now(UTC) + timedelta(seconds=lead_s)
    step = span_s / max(count - 1, 1)
    gate = asyncio.Semaphore(64)
    run = uuid.uuid4().hex[:8]

    async def one(n: int) -> float:
        due = first + timedelta(seconds=n * step)
        async with gate:
            handle = await client.start_workflow(
                BareTimerWorkflow.run, due, id=f"bench-bare-{run}-{n}", task_queue=MINIMAL_TASK_QUEUE
            )
        return await handle.result()

    print(f"  baseline: {count} bare timers due over {span_s:.0f}s from {first:%H:%M:%S}", flush=True)
    late = await asyncio.gather(*(one(n) for n in range(count)))
    return {"timers": count, "due_span_s": span_s, "late": summary(list(late))}
