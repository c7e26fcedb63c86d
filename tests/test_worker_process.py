"""worker.py as a process: it serves cases and exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from temporalio.testing import WorkflowEnvironment

from config import PROJECT_ROOT, Settings


async def test_worker_stops_gracefully_on_sigterm(dev_server: WorkflowEnvironment, settings: Settings) -> None:
    env = {
        **os.environ,
        "HCP_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "HCP_DATABASE_URL": settings.sqlalchemy_url,
        "HCP_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "HCP_PII_KEYS": settings.pii_keys,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=PROJECT_ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    lines: list[str] = []
    while not any("worker polling" in line for line in lines):
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=60)
        assert line, f"worker exited early: {''.join(lines)}"
        lines.append(line.decode())
    proc.send_signal(signal.SIGTERM)
    rest = (await asyncio.wait_for(proc.stderr.read(), timeout=60)).decode()
    code = await proc.wait()
    output = "".join(lines) + rest
    assert code == 0, f"worker exited with {code}:\n{output}"
    assert "worker stopped" in rest, output
