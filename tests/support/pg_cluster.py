"""A throwaway PostgreSQL cluster of the test's own (initdb and pg_ctl on a free port), to stop and start at will.

Fault tests stop it to see what the system does without its database; the shared cluster of the
other tests is never touched. `BIN` is None where the server binaries are not installed: such tests
skip themselves (`requires_server_binaries`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.db import alembic_upgrade
from tests.support.settings import free_port


def _server_binaries() -> Path | None:
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all(Path(directory, name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    return None


BIN = _server_binaries()
requires_server_binaries = pytest.mark.skipif(
    BIN is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not installed"
)


class PrivateCluster:
    """A throwaway PostgreSQL cluster. initdb refuses to run as root, so as root it runs as `postgres`."""

    def __init__(self) -> None:
        assert BIN is not None
        self.root = Path(tempfile.mkdtemp(prefix="hcp-pg-outage-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        assert BIN is not None
        self._run(
            str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )

    def start(self) -> None:
        assert BIN is not None
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        assert BIN is not None
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def migrated_cluster() -> Iterator[PrivateCluster]:
    """A running private cluster, migrated to the head, removed afterwards whatever happened."""
    pg = PrivateCluster()
    try:
        pg.init()
        pg.start()
        alembic_upgrade(pg.url)
        yield pg
    finally:
        pg.remove()
