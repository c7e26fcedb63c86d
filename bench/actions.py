"""Latency of a case action (an Update round trip) at a steady rate, next to a bare Update, in one run.

    .venv/bin/python -m bench.actions [--rate 5] [--seconds 20] [--rounds 2] [--cases 20]

On its own stack (bench/harness.py). The case action is 回访 (log_callback): a step a clerk may take
any number of times while the case is in verification, so the same cases serve the whole run. Each
one is a validated Update that writes a timeline event and its audit row. The baseline is the same
rate of Updates to minimal workflows that only count them. Turns alternate (case, bare, case, bare...)
so both meet the same background load; each turn sends at the given rate, open loop: a slow answer
does not slow the sending.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.cases import post_bad_ratings, wait_opened
from bench.harness import BenchStack, machine, summary
from bench.minimal import MINIMAL_TASK_QUEUE, MinimalWorkflow
from models.case.step_inputs import AcceptInput, CallbackInput
from models.case.vocabulary import Actor, workflow_id_for_rating
from models.roles import Role
from workflows.case import CaseWorkflow


async def steady(rate: float, seconds: float, action: Callable[[int], Awaitable[None]]) -> list[float]:
    """Send `action(n)` at `rate` per second for `seconds`, open loop; each one's latency."""
    latencies: list[float] = []

    async def timed(n: int) -> None:
        started = time.monotonic()
        await action(n)
        latencies.append(time.monotonic() - started)

    tasks = []
    started = time.monotonic()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        tasks.append(asyncio.create_task(timed(n)))
    await asyncio.gather(*tasks)
    return latencies


async def bench(args: argparse.Namespace, bs: BenchStack) -> dict[str, Any]:
    assert bs.demo is not None
    client: Client = await bs.client()
    prefix = bs.stack.workflow_id_prefix
    async with httpx.AsyncClient(base_url=bs.api_url, timeout=60) as api:
        cases = await post_bad_ratings(api, bs.demo.api_key, args.cases, 50.0, "actions")
    await wait_opened(bs, cases)
    handles = []
    for case in cases:
        handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id_for_rating(case.rating_id, prefix))
        staff = Actor(user_id=1, role=Role.UNIT_STAFF, unit_id=case.unit_id)
        await handle.execute_update(CaseWorkflow.accept, AcceptInput(actor=staff, note="签收"))
        handles.append((handle, CallbackInput(actor=staff, reached=False, note="无人接听，稍后再拨")))
    minimal = [
        await client.start_workflow(
            MinimalWorkflow.run, 1_000_000, id=f"bench-actions-{uuid.uuid4().hex}", task_queue=MINIMAL_TASK_QUEUE
        )
        for _ in range(args.cases)
    ]

    async def case_action(n: int) -> None:
        handle, callback = handles[n % len(handles)]
        await handle.execute_update(CaseWorkflow.log_callback, callback)

    async def bare_action(n: int) -> None:
        await minimal[n % len(minimal)].execute_update(MinimalWorkflow.step, "callback")

    case_lat: list[float] = []
    bare_lat: list[float] = []
    for turn in range(args.rounds):
        case_lat += await steady(args.rate, args.seconds, case_action)
        bare_lat += await steady(args.rate, args.seconds, bare_action)
        print(f"turn {turn + 1}/{args.rounds}: case {fmt(summary(case_lat))} | bare {fmt(summary(bare_lat))}")
    for bare in minimal:
        await bare.terminate("benchmark over")
    return {
        "machine": machine(),
        "args": vars(args),
        "case": summary(case_lat),
        "bare": summary(bare_lat),
        "actions": len(case_lat),
    }


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5.0, help="actions per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each turn")
    parser.add_argument("--rounds", type=int, default=2, help="alternating turns of each")
    parser.add_argument("--cases", type=int, default=20, help="cases (and minimal workflows) the actions go to")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    bs = BenchStack()
    with bs.running():
        r = asyncio.run(bench(args, bs))
    print(f"\nmachine: {r['machine']}")
    print(f"{'figure':<36}{'case action':>14}{'bare Update':>14}{'ratio':>9}")
    for p in ("p50", "p99"):
        case, bare = r["case"][p] * 1000, r["bare"][p] * 1000
        print(f"{f'{p} at {args.rate:g}/s (ms)':<36}{case:>14.0f}{bare:>14.0f}{case / bare:>8.2f}×")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2, default=str))


if __name__ == "__main__":
    main()
