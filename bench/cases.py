"""Full-lifecycle cases per second against a minimal workflow taking the same Updates, in one run.

    .venv/bin/python -m bench.cases [--cases 200] [--concurrency 16] [--rounds 2] [--arrival-rate 25]

On its own stack (scratch PostgreSQL database, Temporal dev server, one case worker and one API
process, the baseline worker beside them):

1. Arrival: bad ratings are posted through the API at --arrival-rate per second; for each, the time
   from the API's answer to the case's "opened" event being in the database (ready to work).
2. Lifecycle, in alternating turns of the same size: a case is worked through accept, callback,
   verification, rectification, feedback and the rater's answer until it closes (Updates sent as the
   API sends them), next to a minimal workflow taking six Updates that only count. Cases per second,
   each step's latency, and the case's history (events, workflow tasks, activities, timers) next to
   the minimal one's.

It prints a table and, with --json, writes the figures for docs/measurements.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError

from bench.harness import BenchStack, machine, summary
from bench.minimal import MINIMAL_TASK_QUEUE, MinimalWorkflow
from models.case.step_inputs import (
    AcceptInput,
    CallbackInput,
    FeedbackInput,
    RaterResponseInput,
    RectificationInput,
    VerificationInput,
)
from models.case.vocabulary import RATER_ACTOR, Actor, Judgement, Verdict, workflow_id_for_rating
from models.roles import Role
from workflows.case import CaseWorkflow

UNITS = {"YT-SCJ": "370600-XK-0003", "YT-RSJ": "370600-GG-0002"}  # unit code → an item it handles
STEPS = ("accept", "callback", "verify", "rectify", "feedback", "rater_answer")


@dataclass
class OpenedCase:
    case_id: int
    rating_id: int
    unit_id: int
    sent_at: float  # wall clock when the rating was sent
    answered_at: float  # wall clock when the API answered 201


# ---- arrival: ratings → cases ready to work ----


async def post_bad_ratings(api: httpx.AsyncClient, key: str, count: int, rate: float, tag: str) -> list[OpenedCase]:
    """Register `count` records (untimed), then post one bad rating each at `rate` per second."""
    headers = {"X-API-Key": key}
    completed = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    records = [(f"BENCH-{tag}-{n:06d}", "YT-SCJ" if n % 3 else "YT-RSJ") for n in range(count)]
    gate = asyncio.Semaphore(8)

    async def register(record_no: str, unit_code: str) -> None:
        body = {
            "record_no": record_no, "item_code": UNITS[unit_code], "unit_code": unit_code,
            "applicant_type": "individual", "service_channel": "online", "completed_at": completed,
        }  # fmt: skip
        async with gate:
            answer = await api.post("/api/v1/service-records", json=body, headers=headers)
        if answer.status_code != 201:
            raise RuntimeError(f"register {record_no}: {answer.status_code} {answer.text[:200]}")

    await asyncio.gather(*(register(no, unit) for no, unit in records))
    opened: list[OpenedCase] = []

    async def rate_one(n: int, record_no: str) -> None:
        rating = {
            "record_no": record_no, "channel": "pc", "target": "item", "level": "very_dissatisfied",
            "real_name": True, "comment": "窗口排队两个小时，材料被退回三次",
            "rater": {"name": f"评价人{n}", "phone": f"139{n:08d}", "email": f"bench.rater{n}@example.com"},
        }  # fmt: skip
        sent_at = time.time()
        answer = await api.post("/api/v1/ratings", json=rating, headers={**headers, "Idempotency-Key": record_no})
        answered_at = time.time()
        if answer.status_code != 201 or answer.json()["case_id"] is None:
            raise RuntimeError(f"rating {record_no}: {answer.status_code} {answer.text[:200]}")
        body = answer.json()
        opened.append(OpenedCase(body["case_id"], body["rating_id"], 0, sent_at, answered_at))

    tasks = []
    started = time.monotonic()
    for n, (record_no, _) in enumerate(records):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        tasks.append(asyncio.create_task(rate_one(n, record_no)))
    await asyncio.gather(*tasks)
    return opened


async def wait_opened(bs: BenchStack, cases: list[OpenedCase], timeout: float = 300) -> list[float]:
    """Seconds from sending each rating to its case's "opened" event being in the database."""
    ids = [c.case_id for c in cases]
    deadline = time.monotonic() + timeout
    while True:
        rows = bs.sql(
            'SELECT e.case_id, e.recorded_at, c.unit_id FROM caseevent e JOIN "case" c ON c.id = e.case_id '
            "WHERE e.action = 'opened' AND e.case_id = ANY(%s)",
            ids,
        )
        if len(rows) == len(ids):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(rows)} of {len(ids)} cases opened within {timeout:.0f}s")
        await asyncio.sleep(0.5)
    by_case = {int(str(r[0])): r for r in rows}
    waits = []
    for case in cases:
        _, recorded_at, unit_id = by_case[case.case_id]
        assert isinstance(recorded_at, datetime)
        case.unit_id = int(str(unit_id))
        waits.append(recorded_at.timestamp() - case.sent_at)
    return waits


# ---- lifecycle: a case worked to its end, and the minimal workflow ----


async def work_case(client: Client, prefix: str, case: OpenedCase, latencies: dict[str, list[float]]) -> int:
    """Take the six steps of a case that is rectified and satisfies its rater; the rater's retries."""
    handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id_for_rating(case.rating_id, prefix))
    staff = Actor(user_id=1, role=Role.UNIT_STAFF, unit_id=case.unit_id)
    steps: list[tuple[str, Any, Any]] = [
        ("accept", CaseWorkflow.accept, AcceptInput(actor=staff, note="签收")),
        ("callback", CaseWorkflow.log_callback, CallbackInput(actor=staff, reached=True, note="已电话联系评价人")),
        (
            "verify",
            CaseWorkflow.verify,
            VerificationInput(actor=staff, verdict=Verdict.VALID, findings="情况属实", judgement=Judgement.REASONABLE),
        ),
        ("rectify", CaseWorkflow.rectify, RectificationInput(actor=staff, measures="增开窗口，材料一次告知")),
        ("feedback", CaseWorkflow.give_feedback, FeedbackInput(actor=staff, message="已增开窗口，感谢监督")),
        ("rater_answer", CaseWorkflow.rater_respond, RaterResponseInput(actor=RATER_ACTOR, satisfied=True)),
    ]
    retries = 0
    for name, update, inp in steps:
        while True:
            started = time.monotonic()
            try:
                await handle.execute_update(update, inp)
            except WorkflowUpdateFailedError:
                # Only the rater's answer may come before the workflow has sent the feedback link.
                if name != "rater_answer" or retries > 200:
                    raise
                retries += 1
                await asyncio.sleep(0.05)
                continue
            latencies[name].append(time.monotonic() - started)
            break
    await handle.result()
    return retries


async def case_job(
    client: Client, prefix: str, case: OpenedCase, latencies: dict[str, list[float]], retries: list[int]
) -> None:
    retries.append(await work_case(client, prefix, case, latencies))


async def work_minimal(client: Client, latencies: dict[str, list[float]]) -> None:
    """Start a minimal workflow and send it six Updates, one after another, as a case gets."""
    handle = await client.start_workflow(
        MinimalWorkflow.run, len(STEPS), id=f"bench-minimal-{uuid.uuid4().hex}", task_queue=MINIMAL_TASK_QUEUE
    )
    for name in STEPS:
        started = time.monotonic()
        await handle.execute_update(MinimalWorkflow.step, name)
        latencies[name].append(time.monotonic() - started)
    await handle.result()


async def run_turn(jobs: list[Any], concurrency: int) -> float:
    """Run the jobs (coroutine factories) `concurrency` at a time; the wall time of the turn."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with gate:
            return await job()

    started = time.monotonic()
    await asyncio.gather(*(one(job) for job in jobs))
    return time.monotonic() - started


# ---- histories ----

_KINDS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow tasks",
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activities",
    EventType.EVENT_TYPE_MARKER_RECORDED: "markers (local activities, patches)",
    EventType.EVENT_TYPE_TIMER_STARTED: "timers started",
    EventType.EVENT_TYPE_TIMER_CANCELED: "timers cancelled",
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "search attribute upserts",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "updates",
}


async def history_profile(client: Client, workflow_ids: list[str]) -> dict[str, float]:
    """Mean events per workflow, in total and of the kinds that cost the server work."""
    totals: Counter[str] = Counter()
    for wid in workflow_ids:
        # Every run of the workflow (a reopened case continues as new; these do not).
        history = await client.get_workflow_handle(wid).fetch_history()
        totals["events"] += len(history.events)
        for event in history.events:
            kind = _KINDS.get(event.event_type)
            if kind:
                totals[kind] += 1
    return {k: v / len(workflow_ids) for k, v in totals.items()}


# ---- the run ----


async def bench(args: argparse.Namespace, bs: BenchStack) -> dict[str, Any]:
    assert bs.demo is not None
    client = await bs.client()
    prefix = bs.stack.workflow_id_prefix
    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    async with httpx.AsyncClient(base_url=bs.api_url, timeout=60) as api:
        print(f"arrival: {args.arrival_cases} bad ratings at {args.arrival_rate}/s", flush=True)
        arrived = await post_bad_ratings(api, bs.demo.api_key, args.arrival_cases, args.arrival_rate, "arrival")
        waits = await wait_opened(bs, arrived)
        answered = summary([c.answered_at - c.sent_at for c in arrived])
        results["arrival"] = {"cases": len(arrived), "rate": args.arrival_rate, **summary(waits), "answer": answered}
        print(f"  ready to work after: {fmt(summary(waits))}; the API answered after: {fmt(answered)}", flush=True)
        # Work the arrival's cases too, so they do not sit in the dev server's timers during the turns.
        await run_turn([lambda c=c: work_case(client, prefix, c, defaultdict(list)) for c in arrived], 16)

        case_rates, minimal_rates = [], []
        case_steps: dict[str, list[float]] = defaultdict(list)
        minimal_steps: dict[str, list[float]] = defaultdict(list)
        sample_cases: list[str] = []
        sample_minimal: list[str] = []
        answers: list[int] = []  # the rater's retries, per case
        for turn in range(args.rounds):
            print(f"turn {turn + 1}/{args.rounds}: opening {args.cases} cases (untimed)", flush=True)
            cases = await post_bad_ratings(api, bs.demo.api_key, args.cases, 200.0, f"t{turn}")
            await wait_opened(bs, cases)
            took = await run_turn(
                [lambda c=c: case_job(client, prefix, c, case_steps, answers) for c in cases], args.concurrency
            )
            case_rates.append(len(cases) / took)
            sample_cases += [workflow_id_for_rating(c.rating_id, prefix) for c in cases[:10]]
            print(f"  cases:   {len(cases) / took:6.2f}/s ({took:.1f}s)", flush=True)
            took = await run_turn([lambda: work_minimal(client, minimal_steps)] * args.cases, args.concurrency)
            minimal_rates.append(args.cases / took)
            print(f"  minimal: {args.cases / took:6.2f}/s ({took:.1f}s)", flush=True)
        async for wf in client.list_workflows("WorkflowType = 'BenchMinimalWorkflow'", limit=10):
            sample_minimal.append(wf.id)
    results["lifecycle"] = {
        "cases_per_s": sum(case_rates) / len(case_rates),
        "minimal_per_s": sum(minimal_rates) / len(minimal_rates),
        "turns": {"cases": case_rates, "minimal": minimal_rates},
        "rater_retries_per_case": sum(answers) / len(answers),
    }
    results["lifecycle"]["ratio"] = results["lifecycle"]["cases_per_s"] / results["lifecycle"]["minimal_per_s"]
    results["steps"] = {
        name: {"case": summary(case_steps[name]), "minimal": summary(minimal_steps[name])} for name in STEPS
    }
    all_case = [v for name in STEPS if name != "rater_answer" for v in case_steps[name]]
    all_minimal = [v for name in STEPS for v in minimal_steps[name]]
    results["steps"]["all_staff_steps"] = {"case": summary(all_case), "minimal": summary(all_minimal)}
    if args.dump_history:
        history = await client.get_workflow_handle(sample_cases[0]).fetch_history()
        for event in history.events:
            kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
            detail = event.marker_recorded_event_attributes.marker_name if kind == "MARKER_RECORDED" else ""
            print(f"  {event.event_id:4d} {kind} {detail}")
    results["history"] = {
        "case": await history_profile(client, sample_cases),
        "minimal": await history_profile(client, sample_minimal),
    }
    return results


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms, max {s['max'] * 1000:.0f} ms"


def report(r: dict[str, Any]) -> None:
    """The table, as docs/measurements.md shows it."""
    life = r["lifecycle"]
    print(f"\nmachine: {r['machine']}")
    print(f"{'figure':<44}{'case':>14}{'baseline':>14}{'ratio':>9}")
    print(f"{'full lifecycles per second':<44}{life['cases_per_s']:>14.2f}{life['minimal_per_s']:>14.2f}"
          f"{life['ratio']:>8.2f}×")  # fmt: skip
    for name, pair in r["steps"].items():
        for p in ("p50", "p99"):
            case, base = pair["case"][p] * 1000, pair["minimal"][p] * 1000
            print(f"{f'step {name} {p} (ms)':<44}{case:>14.0f}{base:>14.0f}{case / base:>8.2f}×")
    hist_case, hist_min = r["history"]["case"], r["history"]["minimal"]
    for kind in ["events", *sorted(set(_KINDS.values()))]:
        a, b = hist_case.get(kind, 0.0), hist_min.get(kind, 0.0)
        ratio = f"{a / b:>8.2f}×" if b else f"{'':>9}"
        print(f"{f'history: {kind} per workflow':<44}{a:>14.1f}{b:>14.1f}{ratio}")
    arr = r["arrival"]
    print(f"{'rating sent → case ready, at ' + str(arr['rate']) + '/s (ms)':<44}"
          f"p50 {arr['p50'] * 1000:.0f}, p99 {arr['p99'] * 1000:.0f}, max {arr['max'] * 1000:.0f}")  # fmt: skip
    print(f"{'the API answered the rating after (ms)':<44}p50 {arr['answer']['p50'] * 1000:.0f}, "
          f"p99 {arr['answer']['p99'] * 1000:.0f}")  # fmt: skip
    print(f"rater answers sent before the feedback link existed (retried): {life['rater_retries_per_case']:.2f}/case")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200, help="cases (and minimal workflows) per turn")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="alternating turns of each")
    parser.add_argument("--arrival-cases", type=int, default=200)
    parser.add_argument("--arrival-rate", type=float, default=25.0, help="bad ratings per second in the arrival")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--dump-history", action="store_true", help="print one case's history, event by event")
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs (printed path)")
    args = parser.parse_args()
    bs = BenchStack()
    with bs.running(keep=args.keep):
        results = asyncio.run(bench(args, bs))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
