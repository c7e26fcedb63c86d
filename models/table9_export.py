"""Ratings as GB/T 39046-2020 表9 CSV, for the platform's bulk import: the API's export and the command's.

UTF-8 with a BOM (Excel in China needs it), CRLF lines, the nine 表9 columns in the standard's order
and then 评价对象 and 评价环节 (models/upstream_fields.py). Rows are read in batches by id and written as they
come, so a month of a province's ratings never sits in memory at once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from models.db import Database
from models.deadlines import CHINA_TZ
from models.upstream_fields import EXTRA_RATING_COLUMNS, TABLE9_COLUMNS, table9_batch

COLUMNS = TABLE9_COLUMNS + EXTRA_RATING_COLUMNS
BATCH = 1000
# A cell starting like this is a formula to Excel (CSV injection): a leading quote keeps it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def day_range(first: date, last: date) -> tuple[datetime, datetime]:
    """From the start of `first` to the end of `last`, China time (the days people mean)."""
    start = datetime.combine(first, time(), tzinfo=CHINA_TZ)
    return start, datetime.combine(last + timedelta(days=1), time(), tzinfo=CHINA_TZ)


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _line(values: tuple[str, ...] | list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


@dataclass
class Table9Export:
    """Every rating submitted in [start, end) as CSV text, piece by piece (oldest id first); `rows` counts them."""

    db: Database
    start: datetime
    end: datetime
    rows: int = 0

    async def chunks(self) -> AsyncIterator[str]:
        yield "\ufeff" + _line(COLUMNS)
        after_id = 0
        while True:
            async with self.db.session() as session:
                batch = await table9_batch(session, self.start, self.end, after_id, BATCH)
            if not batch:
                return
            self.rows += len(batch)
            yield "".join(_line([_cell(row[column]) for column in COLUMNS]) for _, row in batch)
            after_id = batch[-1][0]
