"""Opening many real cases quickly: records by COPY, bad ratings through the rating import, workflows started
from the outbox rows the import wrote, many at a time.

The ratings, their case rows and outbox rows are written by the import's own path (runtime/import_run.py:
judged in chunks by models/bulk_intake.py, written by COPY with intake's `open_case`), so every case is
what intake makes. The API's fast path starts one workflow per request and the worker's outbox relay one
after another; here `CaseStarter` reads the same outbox rows and calls the same `start_case_workflow`
(runtime/temporal.py) many at a time, then marks the rows dispatched as the API's fast path does. The
relay keeps running beside it: a row both start is one workflow ("use existing"). Service records are
not the subject and go in by one COPY, with the columns the API writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.harness import BenchStack
from models.case.vocabulary import CaseWorkflowInput
from models.codes import code_book
from models.db import Database, utcnow
from models.outbox import START_CASE
from models.policy import PinnedPolicy
from models.table9_import import RowReader
from runtime.import_run import Importer, Row
from runtime.temporal import start_case_workflow

SOURCE = "national-platform"  # the import reads the API's own field names through any source's tables
CHUNK = 2000
# (unit code, an online item it handles): the seed's two units under one office (runtime/seed.py)
UNITS = (("YT-SCJ", "370600-XK-0003"), ("YT-RSJ", "370600-GG-0002"))


def register_records(bs: BenchStack, prefix: str, count: int) -> list[str]:
    """`count` online records completed an hour ago, spread over the two units, by one COPY; their numbers."""
    ids = {str(code): int(str(id_)) for code, id_ in bs.sql("SELECT code, id FROM unit")}
    items = {str(code): int(str(id_)) for code, id_ in bs.sql("SELECT code, id FROM serviceitem")}
    completed = datetime.now(UTC) - timedelta(hours=1)
    numbers = [f"{prefix}-{n:07d}" for n in range(count)]
    with psycopg.connect(bs.stack.libpq_url) as conn, conn.cursor() as cur:
        columns = (
            "record_no, item_id, unit_id, applicant_type, service_channel, source_system, completed_at, created_at"
        )
        with cur.copy(f"COPY servicerecord ({columns}) FROM STDIN") as copy:
            for n, record_no in enumerate(numbers):
                unit, item = UNITS[n % len(UNITS)]
                copy.write_row(
                    (record_no, items[item], ids[unit], "individual", "online", SOURCE, completed, completed)
                )
    return numbers


def bad_rating(record_no: str, n: int, named: bool) -> dict[str, Any]:
    """A 非常不满意 rating in the API's field names: real-name with a phone (callback and verification
    clocks), or anonymous without contact (the verification clock only)."""
    row: dict[str, Any] = {
        "record_no": record_no,
        "level": "very_dissatisfied",
        "channel": "pc",
        "comment": f"窗口排队两个小时，材料被退回{n % 7 + 2}次（{n}）",
        "real_name": "true" if named else "false",
    }
    if named:
        row |= {"rater_name": f"评价人{n}", "rater_phone": f"139{n:08d}"}
    return row


async def import_ratings(
    bs: BenchStack, rows: list[dict[str, Any]], progress: Callable[[int, int], None] | None = None
) -> int:
    """Write the rows through the rating import, a chunk per transaction; the number of cases it opened."""
    settings = bs.stack.settings
    book = code_book()
    source = book.source(SOURCE)
    assert source is not None
    now = utcnow()
    db = Database(settings.async_sqlalchemy_url)
    importer = Importer(db, settings, lambda columns: RowReader(columns, source, book, now), SOURCE)
    try:
        for start in range(0, len(rows), CHUNK):
            chunk: list[Row] = [(start + i + 1, row, []) for i, row in enumerate(rows[start : start + CHUNK])]
            await importer.chunk(chunk)
            if progress is not None:
                progress(importer.tally.written, importer.tally.cases)
    finally:
        await db.dispose()
    if importer.tally.rejected_count:
        raise RuntimeError(f"the import refused rows: {importer.tally.examples}")
    return importer.tally.cases


async def count_opened(conn: psycopg.AsyncConnection[Any], since_id: int = 0) -> int:
    """Cases (above `since_id`) whose workflow has written its "opened" event."""
    cur = await conn.execute(
        "SELECT count(*) FROM caseevent WHERE action = 'opened' AND case_id > %s", (since_id,), prepare=True
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class CaseStarter:
    """Starts the workflows of undispatched outbox rows (case id above `since_id`), `concurrency` at a time,
    never more than `window` ahead of the cases that have opened."""

    bs: BenchStack
    since_id: int
    concurrency: int
    window: int
    started: int = 0
    opened: int = 0
    _policies: dict[tuple[str, int], PinnedPolicy] = field(default_factory=dict)

    def _input(self, payload: dict[str, Any]) -> CaseWorkflowInput:
        # Every case of a version carries the same profile: parse it once, not once per case.
        raw = payload["input"]
        key = (raw["policy"]["code"], raw["policy"]["version"])
        if key not in self._policies:
            self._policies[key] = PinnedPolicy.model_validate(raw["policy"])
        return CaseWorkflowInput.model_validate({**raw, "policy": self._policies[key]})

    async def run(self, writing: asyncio.Task[int]) -> None:
        """Until the import is done and no outbox row of these cases is left undispatched."""
        client = await self.bs.client()
        queue = self.bs.stack.settings.temporal_task_queue
        gate = asyncio.Semaphore(self.concurrency)
        cursor = 0

        async def start(outbox_id: int, payload: dict[str, Any]) -> int:
            async with gate:
                while self.started - self.opened >= self.window:
                    await asyncio.sleep(0.2)
                self.started += 1
                await start_case_workflow(client, payload["workflow_id"], self._input(payload), queue)
            return outbox_id

        async with await psycopg.AsyncConnection.connect(self.bs.stack.libpq_url, autocommit=True) as conn:
            while True:
                done_writing = writing.done()
                cur = await conn.execute(
                    "SELECT id, payload FROM outboxentry WHERE kind = %s AND dispatched_at IS NULL AND id > %s "
                    "AND case_id > %s ORDER BY id LIMIT 500",
                    (START_CASE, cursor, self.since_id),
                )
                batch = await cur.fetchall()
                if not batch:
                    if done_writing:
                        writing.result()  # the import's own failure, if any
                        return
                    await asyncio.sleep(0.5)
                    continue
                cursor = batch[-1][0]
                ids = await asyncio.gather(*(start(outbox_id, payload) for outbox_id, payload in batch))
                await conn.execute(
                    "UPDATE outboxentry SET dispatched_at = now(), attempts = attempts + 1 "
                    "WHERE id = ANY(%s) AND dispatched_at IS NULL",
                    (list(ids),),
                )


@dataclass
class Opening:
    """What opening a batch of cases took."""

    cases: int
    write_seconds: float  # records, ratings, cases and outbox rows
    open_seconds: float  # from the first write to the last "opened" event
    first_opened: datetime | None = None
    last_opened: datetime | None = None

    @property
    def per_second(self) -> float:
        return self.cases / self.open_seconds if self.open_seconds else float("nan")


async def open_cases(
    bs: BenchStack, prefix: str, count: int, named: bool, concurrency: int, window: int, label: str
) -> Opening:
    """Write `count` bad ratings and start their cases; returns once every one has its "opened" event."""
    since_id = int(str(bs.sql('SELECT coalesce(max(id), 0) FROM "case"')[0][0]))
    began = time.monotonic()
    numbers = register_records(bs, prefix, count)
    rows = [bad_rating(no, n, named) for n, no in enumerate(numbers)]
    written = {"ratings": 0, "at": 0.0}

    def note(ratings: int, _cases: int) -> None:
        written["ratings"], written["at"] = ratings, time.monotonic() - began

    writing = asyncio.create_task(import_ratings(bs, rows, note))
    starter = CaseStarter(bs, since_id, concurrency, window)
    starting = asyncio.create_task(starter.run(writing))
    shown = began
    last_opened = 0
    async with await psycopg.AsyncConnection.connect(bs.stack.libpq_url, autocommit=True) as conn:
        while True:
            starter.opened = await count_opened(conn, since_id)
            if starting.done() and starting.exception() is not None:
                raise RuntimeError("starting the cases failed") from starting.exception()
            if starter.opened >= count:
                break
            now = time.monotonic()
            if now - shown >= 5:
                rate = (starter.opened - last_opened) / (now - shown)
                average = starter.opened / (now - began)
                eta = (count - starter.opened) / average if average else float("inf")
                print(
                    f"  {label}: written {written['ratings']:,}, started {starter.started:,}, "
                    f"opened {starter.opened:,}/{count:,} ({rate:.0f}/s now, {average:.0f}/s overall, "
                    f"ETA {eta / 60:.1f} min)",
                    flush=True,
                )
                shown, last_opened = now, starter.opened
            await asyncio.sleep(1.0)
    await starting
    took = time.monotonic() - began
    span = bs.sql(
        "SELECT min(recorded_at), max(recorded_at) FROM caseevent WHERE action = 'opened' AND case_id > %s", since_id
    )[0]
    first, last = span
    assert isinstance(first, datetime) and isinstance(last, datetime)
    print(f"  {label}: {count:,} cases opened in {took:.0f}s ({count / took:.1f}/s)", flush=True)
    return Opening(count, written["at"], took, first, last)


def check_open(bs: BenchStack, prefix_case_above: int, expected: int) -> dict[str, int]:
    """Each case above the id: exactly one "opened" event, still in its first stage with a deadline running."""
    opened_once, duplicated, waiting = bs.sql(
        """
        SELECT count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n > 1),
               (SELECT count(*) FROM "case" WHERE id > %s AND stage = 'assigned' AND next_due_at IS NOT NULL)
        FROM (SELECT case_id, count(*) AS n FROM caseevent
              WHERE action = 'opened' AND case_id > %s GROUP BY case_id) AS e
        """,
        prefix_case_above,
        prefix_case_above,
    )[0]
    found = {
        "opened_once": int(str(opened_once)),
        "opened_twice": int(str(duplicated)),
        "clocks_running": int(str(waiting)),
    }
    if found["opened_once"] != expected or found["opened_twice"] or found["clocks_running"] != expected:
        raise RuntimeError(f"expected {expected} cases opened once with clocks running, found {found}")
    return found
