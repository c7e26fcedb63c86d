"""The soak test's own stack: a scratch PostgreSQL database, a Temporal dev server, an SMTP sink, API and worker processes.

Nothing here touches another database or another process: the database is created under a fresh
name and dropped at the end, and every process is started here, remembered by its PID and stopped by
it (SIGTERM, then SIGKILL after a grace period). Each child also gets SIGTERM should this process die
(Linux parent-death signal), so a soak killed outright leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from aiosmtpd.controller import Controller

import migrations
from config import PROJECT_ROOT, Settings
from models import search_attributes
from models.db import Database
from models.pii import configure_pii_keys, new_pii_key
from runtime.mail_sink import MailSink, start_mail_sink
from runtime.seed import DemoCredentials, seed_demo

ADMIN_URL = os.environ.get("HCP_SOAK_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
READY_TIMEOUT = 120.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: SIGTERM when the soak itself dies, so no process outlives it."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Process:
    """One child process: how to start it, where its output goes, and the PID of its current run."""

    name: str
    args: list[str]
    log: Path
    ready_line: str = ""  # a line its log prints once it serves; empty: wait for `port` instead
    port: int = 0
    popen: subprocess.Popen[bytes] | None = None
    log_offset: int = 0  # where this run's output starts in the log
    exits: list[int] = field(default_factory=list)  # exit codes of earlier runs

    @property
    def running(self) -> bool:
        """Whether its current run is alive."""
        return self.popen is not None and self.popen.poll() is None


class Stack:
    """The processes and services of one soak run, started and stopped here only."""

    def __init__(self, root: Path, apis: int, workers: int, notice_lease_seconds: float) -> None:
        self.root = root
        self.db_name = f"hcp_soak_{secrets.token_hex(4)}"
        # The scratch database lives on the server of the maintenance database (ADMIN_URL), under its own name.
        self.libpq_url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{self.db_name}"
        self.database_url = self.libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)
        self.temporal_port = free_port()
        self.smtp_port = free_port()
        self.api_ports = [free_port() for _ in range(apis)]
        self.workflow_id_prefix = "soak-"
        self.pii_key = new_pii_key()
        self.settings = Settings(
            data_dir=root / "data",
            database_url=self.database_url,
            temporal_address=f"127.0.0.1:{self.temporal_port}",
            temporal_task_queue="hcp-soak",
            workflow_id_prefix=self.workflow_id_prefix,
            smtp_host="127.0.0.1",
            smtp_port=self.smtp_port,
            smtp_username="",
            smtp_password="",
            smtp_use_tls=False,
            upstream_url="",
            public_base_url=f"http://127.0.0.1:{self.api_ports[0]}",
            secret_key=secrets.token_urlsafe(48),
            pii_keys=self.pii_key,
            # The load comes from one address: the per-client limit of the public pages is for people.
            public_rate_limit_per_minute=1_000_000,
            # A worker killed mid-send leaves its claim: a shorter lease lets the next worker resend sooner.
            notice_lease_seconds=notice_lease_seconds,
        )
        self.processes: list[Process] = []
        self.sink: MailSink | None = None
        self._sink_controller: Controller | None = None
        self._database_created = False
        self._workers = workers

    def env(self) -> dict[str, str]:
        """The children's environment: the settings above as HCP_ variables."""
        s = self.settings
        values = {
            "HCP_DATA_DIR": str(s.data_dir),
            "HCP_DATABASE_URL": s.database_url,
            "HCP_TEMPORAL_ADDRESS": s.temporal_address,
            "HCP_TEMPORAL_TASK_QUEUE": s.temporal_task_queue,
            "HCP_WORKFLOW_ID_PREFIX": s.workflow_id_prefix,
            "HCP_SMTP_HOST": s.smtp_host,
            "HCP_SMTP_PORT": str(s.smtp_port),
            "HCP_SMTP_USERNAME": "",
            "HCP_SMTP_PASSWORD": "",
            "HCP_SMTP_USE_TLS": "false",
            "HCP_UPSTREAM_URL": "",  # no pushes to a provincial platform from a soak
            "HCP_PUBLIC_BASE_URL": s.public_base_url,
            "HCP_SECRET_KEY": s.secret_key,
            "HCP_PII_KEYS": s.pii_keys,
            "HCP_PUBLIC_RATE_LIMIT_PER_MINUTE": str(s.public_rate_limit_per_minute),
            "HCP_NOTICE_LEASE_SECONDS": str(s.notice_lease_seconds),
            "PYTHONUNBUFFERED": "1",
        }
        # None of the caller's HCP_ variables reach the stack; the ones set here also override a .env file.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("HCP_")}
        return {**inherited, **values}

    # ---- the database ----

    def create_database(self) -> DemoCredentials:
        """Create, migrate and seed the scratch database; the demo logins and API key it made."""
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._database_created = True
        migrations.upgrade(self.settings.sqlalchemy_url)
        configure_pii_keys([self.pii_key])

        async def seed() -> DemoCredentials:
            db = Database(self.settings.async_sqlalchemy_url)
            try:
                return await seed_demo(db, self.settings)
            finally:
                await db.dispose()

        with contextlib.redirect_stdout(io.StringIO()):  # the seed prints the tour's demo links
            return asyncio.run(seed())

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of one query on the scratch database."""
        with psycopg.connect(self.libpq_url) as conn:
            return list(conn.execute(query, params).fetchall())

    def drop_database(self) -> None:
        """Drop the scratch database (and only it), with any connection still open to it."""
        if self._database_created:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self._database_created = False

    # ---- processes ----

    def start(self) -> None:
        """Temporal, the SMTP sink, the workers and the APIs; returns once each one serves."""
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        temporal = Process(
            "temporal",
            [
                self.settings.temporal_cli_path, "server", "start-dev", "--headless",
                "--ip", "127.0.0.1", "--port", str(self.temporal_port),
                "--namespace", self.settings.temporal_namespace, "--log-level", "warn",
                *search_attributes.dev_server_flags(),
            ],
            logs / "temporal.log",
            port=self.temporal_port,
        )  # fmt: skip
        self.processes.append(temporal)
        self.spawn(temporal)
        self._sink_controller, self.sink = start_mail_sink("127.0.0.1", self.smtp_port, self.settings.mail_dir)
        self.wait_ready(temporal)
        for n in range(self._workers):
            worker = Process(
                f"worker-{n + 1}", [sys.executable, "worker.py"], logs / f"worker-{n + 1}.log", "worker polling"
            )
            self.processes.append(worker)
            self.spawn(worker)
        for n, port in enumerate(self.api_ports):
            api = Process(
                f"api-{n + 1}",
                [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
                 "--no-access-log"],
                logs / f"api-{n + 1}.log",
                port=port,
            )  # fmt: skip
            self.processes.append(api)
            self.spawn(api)
        for proc in self.processes[1:]:
            self.wait_ready(proc)

    def named(self, name: str) -> Process:
        """The process of that name (temporal, worker-1, api-1...)."""
        return next(p for p in self.processes if p.name == name)

    def spawn(self, proc: Process) -> None:
        """Start a run of the process, its output appended to its log."""
        proc.log_offset = proc.log.stat().st_size if proc.log.exists() else 0
        with proc.log.open("ab") as out:
            proc.popen = subprocess.Popen(
                proc.args,
                cwd=PROJECT_ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the soak only; it stops the children in order
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, proc: Process, timeout: float = READY_TIMEOUT) -> None:
        """Until the process serves: its ready line in this run's log, or its port answering."""
        deadline = time.monotonic() + timeout
        assert proc.popen is not None
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with code {proc.popen.returncode}; see {proc.log}")
            if proc.ready_line:
                if proc.ready_line in self.run_log(proc):
                    return
            elif proc.name.startswith("api-"):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{proc.port}/healthz", timeout=2).status_code == 200:
                        return
            else:
                with socket.socket() as sock:
                    sock.settimeout(0.5)
                    if sock.connect_ex(("127.0.0.1", proc.port)) == 0:
                        return
            time.sleep(0.2)
        raise RuntimeError(f"{proc.name} did not become ready within {timeout:.0f}s; see {proc.log}")

    def run_log(self, proc: Process) -> str:
        """The output of the process's current (or last) run."""
        with proc.log.open("rb") as log:
            log.seek(proc.log_offset)
            return log.read().decode(errors="replace")

    def send_signal(self, proc: Process, sig: signal.Signals, timeout: float = 60.0) -> int:
        """Send a signal to the process (by its PID) and wait for it to exit; its exit code."""
        assert proc.popen is not None
        proc.popen.send_signal(sig)
        try:
            code = proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            code = proc.popen.wait()
        proc.exits.append(code)
        return code

    def stop_all(self) -> None:
        """Stop every process started here, newest first, by PID; then the SMTP sink."""
        for proc in reversed(self.processes):
            if proc.running:
                self.send_signal(proc, signal.SIGTERM, timeout=20)
        if self._sink_controller is not None:
            self._sink_controller.stop()
            self._sink_controller = None

    def remove_files(self) -> None:
        """Remove the run's folder: logs, mail and SMS."""
        shutil.rmtree(self.root, ignore_errors=True)
