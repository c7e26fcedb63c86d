"""Test settings: the databases under test, the test PII key, free ports."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any

from config import Settings
from models.pii import configure_pii_keys, new_pii_key

POSTGRES_URL = os.environ.get("HCP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]
TEST_PII_KEY = new_pii_key()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_settings(database_url: str, data_dir: Path, smtp_port: int, **overrides: Any) -> Settings:
    configure_pii_keys([TEST_PII_KEY])
    return Settings(
        pii_keys=TEST_PII_KEY,
        data_dir=data_dir,
        database_url=database_url,
        smtp_port=smtp_port,
        secret_key="test-signing-key-" + "x" * 32,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:8]}",
        # Tests share one dev server and restart database ids: keep their workflow ids apart.
        workflow_id_prefix=f"t{uuid.uuid4().hex[:8]}-",
        temporal_start_timeout_seconds=2.0,
        outbox_relay_interval_seconds=0.2,
        notice_relay_interval_seconds=0.2,
        # Time-skipping tests jump days ahead while the relay runs on the wall clock: office hours are
        # tested on their own (tests/test_office_hours.py) with a chosen "now".
        office_hours_enforced=False,
        **overrides,
    )
