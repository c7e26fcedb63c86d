"""Import ratings from a file: GB/T 39046-2020 表9 columns as they are, or this API's own field names.

    python -m runtime.import_ratings FILE [--source SYSTEM] [--format csv|json] [--rejects REJECTS.csv]

FILE is CSV (UTF-8, a BOM is fine; header row) or JSON (an array of objects, or one object per line).
Codes are read through the tables of --source (policy/sources/, default national-platform: GB/T
39046 codes); the ratings are stored as that source system's. Progress goes to standard error, the
summary to standard output. Exit status: 0 when every row was imported (or was there already), 1
when some rows were rejected, 2 when the file or the options are wrong. docs/intake.md has the detail.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

from config import Settings, get_settings
from models.audit import audit
from models.codes import code_book
from models.db import Database, utcnow
from models.pii import configure_pii_keys
from models.table9_import import Columns, RowReader, read_header
from runtime.import_run import Importer, Row, Tally, csv_rows, json_rows, reasons

DEFAULT_SOURCE = "national-platform"
CHUNK = 5000
_PROGRESS_EVERY = 0.5  # seconds between rewrites of the progress line


@dataclass
class Progress:
    """One line on standard error, rewritten in place: rows, rows per second, percent of the file, a bar."""

    total: int
    out: TextIO
    started: float = 0.0
    shown: float = 0.0

    def update(self, rows: int, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown < _PROGRESS_EVERY:
            return
        self.shown = now
        share = min(done / self.total, 1.0) if self.total else 1.0
        rate = rows / max(now - self.started, 1e-9)
        bar = "#" * int(share * 30)
        self.out.write(f"\r  [{bar:<30}] {share:6.1%}  {rows:,} 行  {rate:,.0f} 行/秒 ")
        if final:
            self.out.write("\n")
        self.out.flush()


async def import_file(
    settings: Settings,
    path: Path,
    source_system: str,
    file_format: str,
    progress_out: TextIO | None = None,
    chunk_size: int = CHUNK,
) -> Tally:
    """Import every row of the file; returns what happened to each."""
    configure_pii_keys(settings.pii_key_list())
    book = code_book()
    source = book.source(source_system)
    if source is None:
        raise ValueError(f"未配置的来源系统 {source_system}（policy/sources/ 中有：{'、'.join(book.sources)}）")
    now = utcnow()
    db = Database(settings.async_sqlalchemy_url)
    importer = Importer(db, settings, lambda columns: RowReader(columns, source, book, now), source_system)
    progress = Progress(total=path.stat().st_size, out=progress_out or sys.stderr, started=time.monotonic())
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = _rows(handle, file_format)
            chunk: list[Row] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) >= chunk_size:
                    await importer.chunk(chunk)
                    chunk = []
                    progress.update(importer.tally.rows, _position(handle))
            if chunk:
                await importer.chunk(chunk)
        progress.update(importer.tally.rows, progress.total, final=True)
        await _audit(db, path, source_system, importer.tally)
    finally:
        await db.dispose()
    return importer.tally


def _rows(handle: IO[str], file_format: str) -> Iterator[Row]:
    if file_format == "json":
        return json_rows(handle.read())
    records = csv.reader(handle)
    headers = next(records, None)
    if headers is None:
        raise ValueError("文件是空的：CSV 的第一行应为表头")
    columns: Columns = read_header(headers)  # an unknown column stops the import before any row is read
    return csv_rows(records, list(columns.meaning), lambda: records.line_num)


def _position(handle: IO[str]) -> int:
    """How far into the file the reader is, in bytes (for the percentage)."""
    buffer = getattr(handle, "buffer", None)
    return buffer.tell() if buffer is not None else 0


async def _audit(db: Database, path: Path, source_system: str, tally: Tally) -> None:
    async with db.session() as session:
        audit(
            session,
            actor="system",
            actor_role="",
            action="import.ratings",
            target_type="rating_import",
            target_id=path.name,
            reason="runtime.import_ratings",
            after={
                "source_system": source_system,
                "rows": tally.rows,
                "written": tally.written,
                "cases": tally.cases,
                "copies": tally.copies,
                "already": tally.already,
                "rejected": tally.rejected_count,
            },
        )
        await session.commit()


def write_rejects(path: Path, headers: list[str], tally: Tally) -> None:
    """Every rejected row: its number, the reason, the column at fault, the message, then the row as it was."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["行号", "原因代码", "列", "说明", *headers])
        for refused, cells in sorted(tally.rejects, key=lambda r: r[0].position):
            writer.writerow([refused.position, refused.code, refused.field or "", refused.message, *cells])


def summary(path: Path, source_system: str, tally: Tally, seconds: float) -> str:
    rate = tally.rows / seconds if seconds > 0 else 0.0
    lines = [
        f"导入 {path.name}（来源系统 {source_system}）：{tally.rows:,} 行，用时 {seconds:.1f} 秒（{rate:,.0f} 行/秒）",
        f"  已接收 accepted: {tally.written:,}（其中差评 bad, cases opened: {tally.cases:,}）",
        *(
            [f"  一次办多件/一件事 同时写入其他办件 copies on bundled records: {tally.copies:,}"]
            if tally.copies
            else []
        ),
        f"  已导入过 already imported: {tally.already:,}（与已有评价相同，未重复写入）",
        f"  拒收 rejected: {tally.rejected_count:,}",
        *reasons(tally),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runtime.import_ratings", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="CSV or JSON file of ratings")
    parser.add_argument(
        "--source", default=DEFAULT_SOURCE, help=f"source system whose codes the file uses ({DEFAULT_SOURCE})"
    )
    parser.add_argument("--format", choices=("csv", "json"), help="default: from the file's extension")
    parser.add_argument("--rejects", type=Path, help="write every rejected row, with its reason, to this CSV")
    parser.add_argument("--chunk", type=int, default=CHUNK, help=f"rows per transaction ({CHUNK})")
    args = parser.parse_args(argv)
    file_format = args.format or ("json" if args.file.suffix.lower() in (".json", ".jsonl", ".ndjson") else "csv")
    started = time.monotonic()
    try:
        tally = asyncio.run(import_file(get_settings(), args.file, args.source, file_format, chunk_size=args.chunk))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"无法导入 {args.file}：{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(summary(args.file, args.source, tally, time.monotonic() - started))
    if args.rejects is not None and tally.rejects:
        write_rejects(args.rejects, _headers(args.file, file_format), tally)
        print(f"  拒收明细 rejects: {args.rejects}")
    raise SystemExit(1 if tally.rejected_count else 0)


def _headers(path: Path, file_format: str) -> list[str]:
    if file_format == "json":
        return ["原始内容"]
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


if __name__ == "__main__":
    main()
