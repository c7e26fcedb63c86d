"""The soak test's short run (scripts/soak.py): two minutes of load through a worker SIGKILL and an API SIGTERM.

The script as an operator runs it: its own scratch PostgreSQL database, Temporal dev server, SMTP
sink, worker and API processes, a fixed seed so a red run replays. It must exit 0 with books that
balance, and the books must show the run did what they count: cases worked through steps and raters'
answers, notices sent, both restarts felt by the client. Select it with `pytest -m soak`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from config import PROJECT_ROOT

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

pytestmark = pytest.mark.soak

SOAK = [
    "--minutes", "2", "--rate", "2", "--bad-share", "0.12", "--think", "2", "--seed", "20261123",
]  # fmt: skip


def test_two_minutes_through_restarts_balance_the_books(tmp_path: Path) -> None:
    books_file, output = tmp_path / "books.json", tmp_path / "soak.log"
    with output.open("wb") as out:
        soak = subprocess.Popen(
            [sys.executable, "scripts/soak.py", *SOAK, "--books-json", str(books_file)],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            code = soak.wait(timeout=400)
        except subprocess.TimeoutExpired:
            # SIGTERM, not SIGKILL: the script then stops its processes and drops its database.
            soak.terminate()
            code = soak.wait(timeout=120)
    log = output.read_text(encoding="utf-8", errors="replace")
    assert code == 0, log[-8000:]
    assert "✔ the books balance" in log
    books = json.loads(books_file.read_text(encoding="utf-8"))
    failing = [line for line in books["lines"] if not line["ok"]]
    assert books["balanced"] and not failing, failing
    lines = {line["name"]: line for line in books["lines"]}
    totals = books["totals"]

    # The load ran: a steady stream of ratings, cases worked by clerks, a supervisor and raters.
    assert totals["ratings"] >= 150, totals
    assert totals["cases"] >= 10 and totals["steps"] >= 4 * totals["cases"] // 2, totals
    assert totals["rater_answers"] >= 3 and totals["mails"] >= 10, totals
    assert lines["ratings answered 201 = rating rows"]["found"] == totals["ratings"]
    assert lines["case workflows in Temporal (by id prefix) = cases"]["found"] == totals["cases"]
    # Both restarts happened and the client felt the API's: its connections were lost and retried.
    assert totals["restarts"] == 2 and totals["lost_connections"] > 0, totals
    assert "worker-1 SIGKILL: killed outright (exit code), back in service" in lines
    assert "api-1 SIGTERM: stopped in order (exit code), back in service" in lines
    # Every workflow run's history was read inside its payloads, and none holds a rater's contact.
    assert (
        lines["workflow runs' histories read, payloads decoded"]["found"] == totals["workflow_runs"] >= totals["cases"]
    )
    # The scratch database is gone: the script drops what it made.
    made = re.search(r"scratch database (hcp_soak_[0-9a-f]+)", log)
    assert made is not None
    with psycopg.connect(ADMIN_URL) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (made.group(1),)).fetchone()
    assert left == (0,)
