"""What every benchmark shares: its own stack (scratch database, dev server, worker and API processes),
the baseline worker, percentiles, and a line describing the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.minimal import MINIMAL_TASK_QUEUE
from runtime.seed import DemoCredentials

# The soak's stack (scripts/soak_stack.py) is this benchmark's too; scripts/ is a folder of scripts, not a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from soak_stack import Process, Stack  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0–100) by nearest rank; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    """p50, p99, max and mean of a list of seconds."""
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def machine() -> str:
    """Cores, CPU model, load and versions: the line every result table carries."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0]
    py = platform.python_version()
    return f"{os.cpu_count()} cores, {model}, load {load:.1f}, Python {py}, {datetime.now(UTC):%Y-%m-%d}"


class BenchStack:
    """A scratch stack for one benchmark run, with the baseline worker beside the case worker."""

    def __init__(self, workers: int = 1, apis: int = 1) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hcp-bench-"))
        self.stack = Stack(self.root, apis=apis, workers=workers, notice_lease_seconds=30.0)
        self.demo: DemoCredentials | None = None

    @property
    def api_url(self) -> str:
        """The first API process's base URL."""
        return f"http://127.0.0.1:{self.stack.api_ports[0]}"

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of one query on the scratch database."""
        return self.stack.sql(query, *params)

    async def client(self) -> Client:
        """A Temporal client on the stack's dev server, with the app's data converter."""
        settings = self.stack.settings
        return await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
        )

    def start(self) -> None:
        """Database, dev server, SMTP sink, case worker(s), API(s), then the baseline worker."""
        print(f"  starting the stack in {self.root}", flush=True)
        self.demo = self.stack.create_database()
        self.stack.start()
        minimal = Process(
            "minimal-worker",
            [
                sys.executable, "-m", "bench.minimal",
                "--address", self.stack.settings.temporal_address,
                "--namespace", self.stack.settings.temporal_namespace,
                "--task-queue", MINIMAL_TASK_QUEUE,
            ],
            self.root / "logs" / "minimal-worker.log",
            "minimal worker polling",
        )  # fmt: skip
        self.stack.processes.append(minimal)
        self.stack.spawn(minimal)
        self.stack.wait_ready(minimal)

    def stop(self, keep: bool = False) -> None:
        """Stop every process started here (by PID) and drop the scratch database."""
        self.stack.stop_all()
        self.stack.drop_database()
        if not keep:
            self.stack.remove_files()

    @contextlib.contextmanager
    def running(self, keep: bool = False) -> Iterator[BenchStack]:
        """Start, yield, always stop."""
        started = time.monotonic()
        try:
            self.start()
            print(f"  stack ready in {time.monotonic() - started:.0f}s", flush=True)
            yield self
        finally:
            self.stop(keep)
