"""scripts/replay_from_cluster.py against a real dev server: real cases pass, an incompatible variant fails.

The cases are opened through intake and run by the production worker wiring; the script lists them
with a visibility query on the test's own task queue, downloads and replays their histories.
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from config import Settings
from models.case.step_inputs import AcceptInput
from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.case_driver import SCJ_STAFF, CaseDriver
from tests.support.incompatible_case import CaseWorkflowWithAnExtraActivity
from tests.support.services import running_worker
from tests.support.waiting import eventually
from workflows.case import CaseWorkflow
from workflows.rating_sweep import RatingSweepWorkflow
from workflows.root_cause import RootCauseWorkflow

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "replay_from_cluster.py"

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


def _script() -> Any:
    """The script as a module, loaded from its file the way `python scripts/replay_from_cluster.py` runs it."""
    spec = importlib.util.spec_from_file_location("replay_from_cluster", SCRIPT)
    assert spec is not None and spec.loader is not None
    if (loaded := sys.modules.get(spec.name)) is not None:
        return loaded
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _arguments(env: WorkflowEnvironment, settings: Settings, *extra: str) -> list[str]:
    return [
        "--address",
        env.client.service_client.config.target_host,
        "--namespace",
        env.client.namespace,
        "--query",
        f"TaskQueue = '{settings.temporal_task_queue}'",
        *extra,
    ]


async def _open_cases(
    env: WorkflowEnvironment, api: httpx.AsyncClient, demo: DemoCredentials, db: Database, settings: Settings
) -> list[CaseDriver]:
    cases = [await CaseDriver.open(env, api, demo, db, settings, record_no=f"DEMO-000{n}") for n in (1, 2, 3)]
    await cases[0].do(CaseWorkflow.accept, AcceptInput(actor=SCJ_STAFF))
    return cases


async def test_the_current_code_replays_the_clusters_cases_and_a_variant_does_not(
    dev_server: WorkflowEnvironment,
    offline_api: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    demo: DemoCredentials,
    tmp_path: Path,
) -> None:
    async with running_worker(dev_server.client, settings, db):
        cases = await _open_cases(dev_server, offline_api, demo, db, settings)

        async def every_case_has_run_a_task() -> bool:
            histories = [await case.handle.fetch_history() for case in cases]
            return all(any(e.HasField("workflow_task_completed_event_attributes") for e in h.events) for h in histories)

        await eventually(every_case_has_run_a_task)

    # The current code, through the command line as an operator runs it: exit 0, each case replayed.
    saved = tmp_path / "histories"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *_arguments(dev_server, settings, "--save", str(saved))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 histories replayed (CaseWorkflow 3); 0 failed" in done.stdout
    assert "✔ every history replays on the current code" in done.stdout
    files = sorted(saved.glob("*.json"))
    assert len(files) == 3
    # A saved history is what tests/histories/ holds: it replays on its own.
    replayer = Replayer(workflows=[CaseWorkflow], data_converter=pydantic_data_converter)
    for path in files:
        result = await replayer.replay_workflow(
            WorkflowHistory.from_json(path.stem, path.read_text()), raise_on_replay_failure=False
        )
        assert result.replay_failure is None

    # The incompatible variant under the same name: every case fails, and so does the command.
    out = io.StringIO()
    run = _script().run

    workflows: list[Any] = [CaseWorkflowWithAnExtraActivity, RatingSweepWorkflow, RootCauseWorkflow]
    status = await run(_arguments(dev_server, settings), workflows=workflows, out=out)
    report = out.getvalue()
    assert status == 1, report
    assert "3 histories replayed (CaseWorkflow 3); 3 failed" in report
    assert report.count("✘ CaseWorkflow ") == 3 and "Nondeterminism" in report
    for case in cases:
        assert case.handle.id in report


async def test_an_unreachable_cluster_is_exit_status_2(settings: Settings) -> None:
    run = _script().run
    from tests.support.settings import free_port

    out = io.StringIO()
    status = await run(["--address", f"127.0.0.1:{free_port()}"], out=out)
    assert status == 2 and "could not read the cluster" in out.getvalue()
