"""CPU per new case workflow run in the sandbox: our workflow modules passed through, or re-imported.

    .venv/bin/python -m bench.sandbox [--runs 40] [--turns 3]

Temporal's sandbox builds a fresh module world for every workflow run it starts or brings back into
its cache. Replaying a recorded case (tests/histories/satisfied.json) creates one such run each time,
so the CPU per replay, with the worker's runner (runtime/workflow_runner.py) against the SDK's default
runner, in alternating turns, shows what passing our modules through saves per case opened.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.harness import machine, summary
from runtime.workflow_runner import workflow_runner
from workflows.case import CaseWorkflow

HISTORY = Path(__file__).resolve().parent.parent / "tests" / "histories" / "satisfied.json"


async def cpu_per_run(runner: WorkflowRunner, histories: list[WorkflowHistory]) -> float:
    """Mean process CPU seconds per replayed run."""
    replayer = Replayer(workflows=[CaseWorkflow], data_converter=pydantic_data_converter, workflow_runner=runner)
    started = time.process_time()
    for history in histories:
        await replayer.replay_workflow(history)
    return (time.process_time() - started) / len(histories)


async def bench(runs: int, turns: int) -> dict[str, list[float]]:
    text = HISTORY.read_text()
    histories = [WorkflowHistory.from_json(f"bench-sandbox-{n}", text) for n in range(runs)]
    found: dict[str, list[float]] = {"passed through": [], "SDK default": []}
    for turn in range(turns):
        for name, runner in (("SDK default", SandboxedWorkflowRunner()), ("passed through", workflow_runner())):
            found[name].append(await cpu_per_run(runner, histories))
            print(f"turn {turn + 1}/{turns} {name:<15} {found[name][-1] * 1000:6.1f} ms CPU per run", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="replays per turn")
    parser.add_argument("--turns", type=int, default=3, help="alternating turns of each runner")
    args = parser.parse_args()
    found = asyncio.run(bench(args.runs, args.turns))
    ours, default = summary(found["passed through"])["p50"], summary(found["SDK default"])["p50"]
    print(f"\nmachine: {machine()}")
    print(f"CPU per case run (median of turns): passed through {ours * 1000:.1f} ms, SDK default "
          f"{default * 1000:.1f} ms, ratio {ours / default:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
