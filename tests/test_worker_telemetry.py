"""worker.py as a process with HCP_LOG_FORMAT=json and HCP_WORKER_METRICS_ADDRESS: JSON lines, and the SDK's metrics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from config import PROJECT_ROOT, Settings
from tests.pii_watch import PII_NEEDLES
from tests.support.settings import free_port

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def test_worker_logs_json_and_serves_the_sdk_metrics(dev_server: WorkflowEnvironment, settings: Settings) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HCP_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "HCP_DATABASE_URL": settings.sqlalchemy_url,
        "HCP_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "HCP_WORKFLOW_ID_PREFIX": settings.workflow_id_prefix,
        "HCP_PII_KEYS": settings.pii_keys,
        "HCP_LOG_FORMAT": "json",
        "HCP_WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=PROJECT_ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        while not any("worker polling" in line for line in lines):
            line = await asyncio.wait_for(proc.stderr.readline(), timeout=60)
            assert line, f"worker exited early: {''.join(lines)}"
            lines.append(line.decode())

        async with httpx.AsyncClient() as client:

            async def scraped() -> str:
                answer = await client.get(f"http://127.0.0.1:{port}/metrics")
                assert answer.status_code == 200
                return answer.text

            text = await scraped()
            for _ in range(50):  # the pollers report once they have polled
                if "temporal_workflow_task_queue_poll" in text or "temporal_request" in text:
                    break
                await asyncio.sleep(0.2)
                text = await scraped()
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.stderr.read(), timeout=60)).decode()
        code = await proc.wait()
    output = "".join(lines) + rest
    assert code == 0, output

    series = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    temporal = sorted(name for name in series if name.startswith("temporal_"))
    assert "temporal_request_total" in temporal, temporal
    assert any(name.startswith("temporal_worker_") or "poll" in name for name in temporal), temporal

    records = [json.loads(line) for line in output.splitlines() if line.strip()]  # every line is one JSON object
    assert all({"timestamp", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["logger"] == "hcp.worker" and "worker polling" in r["message"] for r in records)
    assert any(r["message"] == "worker stopped" for r in records)
    assert not [needle for needle in PII_NEEDLES if needle in output]
