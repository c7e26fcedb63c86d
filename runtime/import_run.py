"""Running an import: rows in chunks, each judged together and written in one transaction.

A chunk's rows are read into RatingCreate bodies (models/table9_import.py), judged against the
records and the ratings already there (models/bulk_intake.py: a few queries per chunk), and the good
ones written: on PostgreSQL through COPY (runtime/import_copy.py), on SQLite by intake's own
`write_ratings`. A bad rating's case and outbox row commit with it. A chunk that meets a rating
written meanwhile by another path is rolled back and judged again, so nothing is written twice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from config import Settings
from models.bulk_intake import IntakeItem, ItemDone, ItemReady, ItemRefused, PolicyCache, prepare
from models.db import Database
from models.rating_intake import AlreadyRated, write_ratings
from models.ratings import RatingAccepted
from models.table9_import import Columns, RowReader, read_header
from runtime.import_copy import copy_chunk

RawRow = Mapping[str, Any]
# A row as read: its number, the row by header (or why it cannot be read), and its cells for a rejects file.
Row = tuple[int, RawRow | ItemRefused, list[str]]
_ATTEMPTS = 3


@dataclass
class Tally:
    """What an import did, row by row."""

    rows: int = 0
    written: int = 0
    cases: int = 0
    copies: int = 0  # a bundle rating's copies on the bundle's other records (一次办多件, 一件事)
    already: int = 0  # the same rating was there already: nothing written
    rejected: dict[str, list[int]] = field(default_factory=dict)  # reason code → rows
    examples: dict[str, str] = field(default_factory=dict)  # reason code → one message
    rejects: list[tuple[ItemRefused, list[str]]] = field(default_factory=list)

    @property
    def rejected_count(self) -> int:
        return sum(len(rows) for rows in self.rejected.values())

    def refuse(self, refused: ItemRefused, cells: list[str]) -> None:
        self.rejected.setdefault(refused.code, []).append(refused.position)
        self.examples.setdefault(refused.code, refused.message)
        self.rejects.append((refused, cells))


@dataclass
class Importer:
    db: Database
    settings: Settings
    reader_for: Callable[[Columns], RowReader]  # one reader per distinct header
    source_system: str
    tally: Tally = field(default_factory=Tally)
    policies: PolicyCache = field(default_factory=PolicyCache)
    _readers: dict[tuple[str, ...], RowReader | str] = field(default_factory=dict)

    async def chunk(self, rows: Sequence[Row]) -> None:
        """Judge and write one chunk of rows in one transaction."""
        items: list[IntakeItem] = []
        cells_of: dict[int, list[str]] = {}
        readers: dict[int, RowReader] = {}  # to name the file's own column when intake refuses a row
        for position, raw, cells in rows:
            cells_of[position] = cells
            reader = None if isinstance(raw, ItemRefused) else self._reader(raw)
            read = raw if isinstance(raw, ItemRefused) else self._read(position, raw, reader)
            if isinstance(read, ItemRefused):
                self.tally.refuse(read, cells)
            else:
                assert isinstance(reader, RowReader)
                readers[position] = reader
                items.append(read)
        self.tally.rows += len(rows)
        judged: list[ItemRefused | ItemReady | ItemDone] = []
        written: list[RatingAccepted] = []
        for attempt in range(_ATTEMPTS):
            async with self.db.session() as session:
                try:
                    judged, written = await self._write(session, items)
                    break
                except (IntegrityError, AlreadyRated, psycopg.errors.UniqueViolation):
                    await session.rollback()  # written meanwhile by another path: judge the chunk again
                    if attempt == _ATTEMPTS - 1:
                        raise
        for item in judged:
            if isinstance(item, ItemRefused):
                reader = readers[item.position]
                self.tally.refuse(replace(item, field=reader.column_of(item.field)), cells_of[item.position])
            elif isinstance(item, ItemDone):
                self.tally.already += 1
        self.tally.written += len(written)
        self.tally.cases += sum(a.case_id is not None for a in written)
        self.tally.copies += sum(len(a.covered) for a in written)

    async def _write(
        self, session: AsyncSession, items: list[IntakeItem]
    ) -> tuple[list[ItemRefused | ItemReady | ItemDone], list[RatingAccepted]]:
        judged = await prepare(session, items, self.source_system, self.policies)
        ready = [item for item in judged if isinstance(item, ItemReady)]
        if (await session.connection()).dialect.name == "postgresql":
            written = await copy_chunk(session, self.settings, ready, self.source_system)
        else:  # SQLite: the same code as the API, one statement per table per chunk
            written, _starts = await write_ratings(session, self.settings, [r.write for r in ready], self.source_system)
        await session.commit()
        return judged, written

    def _reader(self, raw: RawRow) -> RowReader | str:
        """The reader of rows with these keys (a CSV file has one; JSON objects may differ)."""
        key = tuple(raw)
        if key not in self._readers:
            try:
                self._readers[key] = self.reader_for(read_header(list(raw)))
            except ValueError as exc:  # a JSON object with a key no column means: that row only
                self._readers[key] = str(exc)
        return self._readers[key]

    @staticmethod
    def _read(position: int, raw: RawRow, reader: RowReader | str | None) -> IntakeItem | ItemRefused:
        if not isinstance(reader, RowReader):
            return ItemRefused(position, "unknown_column", str(reader))
        return reader.item(position, raw)


def csv_rows(records: Iterator[list[str]], headers: list[str], line_of: Callable[[], int]) -> Iterator[Row]:
    """CSV records by header, numbered by the file's line (the header is line 1); a ragged record is refused."""
    for cells in records:
        line = line_of()
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(headers):
            yield line, ItemRefused(line, "bad_row", f"有 {len(cells)} 列，表头有 {len(headers)} 列"), cells
            continue
        yield line, dict(zip(headers, cells, strict=True)), cells


def json_rows(text: str) -> Iterator[Row]:
    """A JSON array of objects (numbered from 1), or JSON Lines (numbered by line)."""
    if text.lstrip().startswith("["):
        values: list[Any] = json.loads(text)
        numbered = list(enumerate(values, start=1))
    else:
        numbered = [(n, _json_line(line)) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    for number, value in numbered:
        cells = [json.dumps(value, ensure_ascii=False)]
        if isinstance(value, dict):
            yield number, value, cells
        else:
            yield number, ItemRefused(number, "bad_row", "不是 JSON 对象"), cells


def _json_line(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line


def reasons(tally: Tally, limit: int = 20) -> list[str]:
    """One line per reason, most frequent first: the code, the count, an example message, the first rows."""
    lines = []
    for code, count in Counter({c: len(r) for c, r in tally.rejected.items()}).most_common():
        rows = tally.rejected[code]
        shown = ", ".join(str(r) for r in rows[:limit]) + (" …" if len(rows) > limit else "")
        lines.append(f"    {code} ×{count}：{tally.examples[code]} — 行 {shown}")
    return lines
