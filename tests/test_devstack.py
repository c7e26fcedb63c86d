"""`make run` as a user runs it: the stack comes up, the README tour works, Ctrl-C stops it, a rerun resumes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from config import PROJECT_ROOT
from tests.pii_watch import WATCH
from tests.support.settings import free_port
from tests.support.waiting import eventually


class Stack:
    def __init__(self, data_dir: Path) -> None:
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "HCP_DATA_DIR": str(data_dir),
            "HCP_API_PORT": str(self.api_port),
            "HCP_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "HCP_TEMPORAL_UI_PORT": str(free_port()),
            "HCP_SMTP_PORT": str(free_port()),
        }
        self.env.pop("HCP_DATABASE_URL", None)
        self.output: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runtime.devstack",
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        while not any("ready in" in line for line in self.output):
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=60)
            assert line, "make run exited before it was ready:\n" + "".join(self.output)
            self.output.append(line.decode())
        # Keep draining the pipe so the children never block on a full buffer.
        self._drain = asyncio.create_task(self._read_rest())

    async def _read_rest(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.output.append(line.decode())

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(self.proc.wait(), timeout=60)
        await self._drain
        return code


def credentials(data_dir: Path) -> dict[str, str]:
    lines = (data_dir / "demo-credentials.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


async def test_make_run_tour_stop_and_resume(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    await stack.start()
    try:
        creds = credentials(tmp_path)
        assert "HCP_DEMO_PASSWORD_SCJ_STAFF" in creds and creds["HCP_DEMO_API_KEY"].startswith("hcp_")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.api_port}", timeout=30) as api:
            rating = await api.post(
                "/api/v1/ratings",
                headers={"X-API-Key": creds["HCP_DEMO_API_KEY"]},
                json={
                    "record_no": "DEMO-0001",
                    "level": "very_dissatisfied",
                    "channel": "hall_tablet",
                    "real_name": True,
                    "rater": {"name": "张三", "phone": "13800001234", "email": "zhangsan@example.com"},
                },
            )
            assert rating.status_code == 201, rating.text
            case_id = rating.json()["case_id"]
            token = await api.post(
                "/api/v1/auth/token", data={"username": "scj_staff", "password": creds["HCP_DEMO_PASSWORD_SCJ_STAFF"]}
            )
            staff = {"Authorization": f"Bearer {token.json()['access_token']}"}

            async def started() -> bool:
                return (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()["workflow_started"]

            await eventually(started)
            accepted = await api.post(f"/api/v1/cases/{case_id}/accept", json={"note": "已签收"}, headers=staff)
            assert accepted.status_code == 200 and accepted.json()["stage"] == "verification"
            # The pages are served by the same process, their stylesheet from the app itself.
            sign_in = await api.get("/login")
            assert sign_in.status_code == 200 and "工作人员登录" in sign_in.text
            assert (await api.get("/static/app.css")).status_code == 200
    finally:
        assert await stack.stop() == 0, "".join(stack.output)
    log = "".join(stack.output)
    for part in ("API stopped", "worker stopped", "Temporal dev server stopped", "SMTP sink stopped"):
        assert part in log
    # What the processes printed (API access log, worker, SMTP sink) names no rater.
    WATCH.scan("make run output", log)
    assert not any(s.startswith("make run output") for s in WATCH.sightings)

    # Run it again: same data, the open case is still there and its workflow still takes updates.
    again = Stack(tmp_path)
    await again.start()
    try:
        assert "existing data kept" in "".join(again.output)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{again.api_port}", timeout=30) as api:
            token = await api.post(
                "/api/v1/auth/token", data={"username": "scj_staff", "password": creds["HCP_DEMO_PASSWORD_SCJ_STAFF"]}
            )
            staff = {"Authorization": f"Bearer {token.json()['access_token']}"}
            detail = (await api.get(f"/api/v1/cases/{case_id}", headers=staff)).json()
            assert detail["stage"] == "verification"
            callback = await api.post(
                f"/api/v1/cases/{case_id}/callbacks", json={"reached": True, "note": "已致电"}, headers=staff
            )
            assert callback.status_code == 200, callback.text
            assert callback.json()["callback_done"] is True
    finally:
        assert await again.stop() == 0
