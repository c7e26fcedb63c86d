"""Many open cases waiting on their deadlines, and a thousand deadlines falling due in the same minute.

    .venv/bin/python -m bench.open_cases [--open 100000] [--due-burst 1000] [--json PATH]

On its own stack (scratch PostgreSQL database, Temporal dev server, one case worker and one API process,
the baseline worker beside them), in one run:

1. Idle before: RSS and CPU% of the case worker, the dev server, the baseline worker and the scratch
   database's backends over --idle-seconds, before any case exists (the baseline of step 3).
2. Start rate: --open real cases (workflows/case, the region's profile, real-name raters with a phone, so
   the callback and verification clocks run) written by the rating import and started from their outbox
   rows (bench/bulk_open.py); cases per second until each has its "opened" event, next to minimal
   workflows started and given one Update at the same concurrency.
3. Idle after: the same processes with every case open and waiting on its deadlines.
4. Deadlines due together: --due-burst cases under a profile with minute deadlines (bench/deadline_burst.py),
   opened as fast as step 2 opens them, so their deadlines fall due within the span their opening took:
   how late each reminder and escalation ("overdue") is recorded, its email sent (the notice's sent time)
   and received (the SMTP sink), after the planned instant; next to as many bare Temporal timers due over
   the same span, and how late their activity ran. The open cases of step 2 stay open throughout.

It prints progress while it runs, a table at the end and, with --json, writes the figures for
docs/measurements.md ("Open cases").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

from bench.bulk_open import check_open, open_cases
from bench.deadline_burst import (
    bare_timers,
    install_bench_profile,
    lateness,
    planned_instants,
    stamp_inbox,
    wait_for_burst,
)
from bench.harness import BenchStack, machine
from bench.minimal import MINIMAL_TASK_QUEUE, MinimalWorkflow
from bench.proc_usage import Usage, cpu_seconds, measure


async def minimal_starts(bs: BenchStack, count: int, concurrency: int) -> float:
    """Minimal workflows started and given one Update (answered once their first task ran), per second."""
    client = await bs.client()
    gate = asyncio.Semaphore(concurrency)
    run = uuid.uuid4().hex[:8]

    async def one(n: int) -> None:
        async with gate:
            handle = await client.start_workflow(
                MinimalWorkflow.run, 1, id=f"bench-start-{run}-{n}", task_queue=MINIMAL_TASK_QUEUE
            )
            await handle.execute_update(MinimalWorkflow.step, "opened")

    started = time.monotonic()
    await asyncio.gather(*(one(n) for n in range(count)))
    return count / (time.monotonic() - started)


def pids(bs: BenchStack) -> dict[str, int]:
    """The PIDs of the case worker, the dev server and the baseline worker, as the stack started them."""
    found = {}
    for name in ("worker-1", "temporal", "minimal-worker"):
        popen = bs.stack.named(name).popen
        assert popen is not None
        found[name] = popen.pid
    return found


def cpu_now(bs: BenchStack) -> dict[str, float]:
    """CPU seconds used so far by each of those processes."""
    return {name: cpu_seconds(pid) or 0.0 for name, pid in pids(bs).items()}


def cpu_per(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """Milliseconds of CPU each process spent per item between two readings."""
    return {name: 1000 * (after[name] - before[name]) / count for name in before}


def idle(bs: BenchStack, seconds: float) -> dict[str, Usage]:
    """CPU% and RSS of the stack's long-running processes, and its database's backends, over `seconds`."""
    backends = [int(str(r[0])) for r in bs.sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    return measure(pids(bs), seconds, {"postgres-backends": backends})


async def running_cases(bs: BenchStack) -> int:
    """Case workflows the dev server holds open."""
    client = await bs.client()
    found = await client.count_workflows("WorkflowType = 'CaseWorkflow' AND ExecutionStatus = 'Running'")
    return found.count


async def bench(args: argparse.Namespace, bs: BenchStack) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    inbox = stamp_inbox(bs)
    await asyncio.sleep(10)  # the worker's start-up work (schedules, first relay passes) settles
    print(f"idle before any case: {args.idle_seconds:.0f}s", flush=True)
    results["idle_before"] = {k: vars(v) for k, v in (await asyncio.to_thread(idle, bs, args.idle_seconds)).items()}

    print(f"baseline: {args.baseline_starts} minimal workflows started with one Update", flush=True)
    before = cpu_now(bs)
    results["minimal_starts_per_s"] = await minimal_starts(bs, args.baseline_starts, args.concurrency)
    results["cpu_ms_per_minimal_start"] = cpu_per(before, cpu_now(bs), args.baseline_starts)
    print(f"  {results['minimal_starts_per_s']:.1f}/s", flush=True)

    print(f"opening {args.open:,} cases", flush=True)
    before = cpu_now(bs)
    opened = await open_cases(bs, "OPEN", args.open, True, args.concurrency, args.window, "open")
    results["cpu_ms_per_case_opened"] = cpu_per(before, cpu_now(bs), args.open)
    results["open"] = {
        "cases": opened.cases,
        "write_seconds": opened.write_seconds,
        "open_seconds": opened.open_seconds,
        "per_second": opened.per_second,
        "checked": check_open(bs, 0, args.open),
        "running_workflows": await running_cases(bs),
    }
    events_before = int(str(bs.sql("SELECT count(*) FROM caseevent")[0][0]))
    await asyncio.sleep(15)
    print(f"idle with {args.open:,} cases open: {args.idle_seconds:.0f}s", flush=True)
    results["idle_after"] = {k: vars(v) for k, v in (await asyncio.to_thread(idle, bs, args.idle_seconds)).items()}
    results["idle_after"]["events_recorded"] = int(str(bs.sql("SELECT count(*) FROM caseevent")[0][0])) - events_before

    print(f"deadlines: {args.due_burst} cases due {args.burst_within} min after opening", flush=True)
    await install_bench_profile(bs, args.burst_within, args.burst_remind)
    since_id = int(str(bs.sql('SELECT coalesce(max(id), 0) FROM "case"')[0][0]))
    burst = await open_cases(bs, "BURST", args.due_burst, False, args.concurrency, args.window, "burst")
    check_open(bs, since_id, args.due_burst)
    plans = planned_instants(bs, since_id, args.burst_remind)
    await wait_for_burst(bs, since_id, args.due_burst, timeout=args.burst_within * 60 + 600)
    results["burst"] = {"open_per_second": burst.per_second, **lateness(bs, since_id, plans, inbox)}
    results["bare_timers"] = await bare_timers(bs, args.due_burst, max(results["burst"]["due_span_s"], 1.0))
    results["running_at_end"] = await running_cases(bs)
    return results


def _ms(s: dict[str, float]) -> str:
    return f"{s['p50'] * 1000:.0f} / {s['p99'] * 1000:.0f} / {s['max'] * 1000:.0f}"


def report(r: dict[str, Any]) -> None:
    """The table, as docs/measurements.md shows it."""
    print(f"\nmachine: {r['machine']}")
    rows: list[tuple[str, str, str, str]] = []
    op = r["open"]
    rows.append(("cases open and waiting (dev server, running)", f"{op['running_workflows']:,}", "", ""))
    rows.append(("ratings + cases + outbox rows written (/s)", f"{op['cases'] / op['write_seconds']:.0f}", "", ""))
    ratio = op["per_second"] / r["minimal_starts_per_s"]
    rows.append(
        (
            "cases started to 'opened' (/s)",
            f"{op['per_second']:.1f}",
            f"{r['minimal_starts_per_s']:.1f}",
            f"{ratio:.2f}×",
        )
    )
    per_case, per_start = r["cpu_ms_per_case_opened"], r["cpu_ms_per_minimal_start"]
    for name, baseline in (("worker-1", "minimal-worker"), ("temporal", "temporal")):
        a, b = per_case[name], per_start[baseline]
        rows.append((f"{name} CPU per start (ms)", f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}×" if b else ""))
    before, after = r["idle_before"], r["idle_after"]
    for name in ("worker-1", "temporal", "minimal-worker"):
        b, a = before[name], after[name]
        rows.append((f"{name} RSS idle (MiB, mean)", f"{a['rss_mean_mib']:.0f}", f"{b['rss_mean_mib']:.0f}",
                     f"{a['rss_mean_mib'] / b['rss_mean_mib']:.2f}×"))  # fmt: skip
        rows.append((f"{name} CPU idle (% of a core)", f"{a['cpu_percent']:.1f}", f"{b['cpu_percent']:.1f}",
                     f"{a['cpu_percent'] / b['cpu_percent']:.2f}×" if b["cpu_percent"] else ""))  # fmt: skip
    b, a = before["postgres-backends"], after["postgres-backends"]
    rows.append(("database backends CPU idle (% of a core)", f"{a['cpu_percent']:.1f}", f"{b['cpu_percent']:.1f}",
                 f"{a['cpu_percent'] / b['cpu_percent']:.2f}×" if b["cpu_percent"] else ""))  # fmt: skip
    rows.append(("timeline events written while idle", str(after["events_recorded"]), "", ""))
    burst, bare = r["burst"], r["bare_timers"]["late"]
    rows.append(
        ("burst: deadlines due within (s)", f"{burst['due_span_s']:.0f}", f"{r['bare_timers']['due_span_s']:.0f}", "")
    )
    for label, key in (
        ("reminder recorded", "reminder_recorded"),
        ("overdue recorded", "overdue_recorded"),
        ("reminder email sent", "reminder_email_sent"),
        ("escalation email sent", "escalation_email_sent"),
        ("reminder email received", "reminder_email_received"),
        ("escalation email received", "escalation_email_received"),
    ):
        s = burst[key]
        rows.append((f"{label}, late p50/p99/max (ms)", _ms(s), _ms(bare), f"{s['p99'] / bare['p99']:.2f}× (p99)"))
    width = max(len(row[0]) for row in rows) + 2
    print(f"{'figure':<{width}}{'result':>22}{'baseline':>22}{'ratio':>16}")
    for figure, result, baseline, ratio_text in rows:
        print(f"{figure:<{width}}{result:>22}{baseline:>22}{ratio_text:>16}")
    print(f"counts: {burst['counts']}; running case workflows at the end: {r['running_at_end']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--open", type=int, default=100_000, help="cases opened and left waiting")
    parser.add_argument("--due-burst", type=int, default=1000, help="cases whose deadlines fall due together")
    parser.add_argument("--concurrency", type=int, default=16, help="workflow starts at a time")
    parser.add_argument("--window", type=int, default=32, help="cases started but not yet opened, at most")
    parser.add_argument("--baseline-starts", type=int, default=1000, help="minimal workflows for the start rate")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--burst-within", type=int, default=4, help="the burst's verification deadline (minutes)")
    parser.add_argument("--burst-remind", type=int, default=2, help="its reminder, minutes before the deadline")
    parser.add_argument("--json", type=Path, help="write the figures here")
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
