"""Export ratings as GB/T 39046-2020 表9 rows (CSV), the same file as GET /api/v1/ratings/export.

    python -m runtime.export_ratings --from 2026-11-01 --to 2026-11-30 [--output ratings.csv]

Days are China time, both included. Without --output the CSV goes to standard output. The export
is recorded in the audit log as done by the operator's command ("system").
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import TextIO

from config import Settings, get_settings
from models.audit import audit
from models.db import Database
from models.pii import configure_pii_keys
from models.table9_export import Table9Export, day_range


async def export(settings: Settings, first: date, last: date, out: TextIO) -> int:
    """Write the CSV to `out`; returns how many rating rows it holds."""
    configure_pii_keys(settings.pii_key_list())  # 评价人 is the masked name, read from the encrypted column
    db = Database(settings.async_sqlalchemy_url)
    try:
        async with db.session() as session:
            audit(
                session,
                actor="system",
                actor_role="",
                action="export.ratings_table9",
                target_type="rating_export",
                target_id=f"{first.isoformat()}..{last.isoformat()}",
                reason="runtime.export_ratings",
                after={"from": first.isoformat(), "to": last.isoformat()},
            )
            await session.commit()
        table = Table9Export(db, *day_range(first, last))
        async for chunk in table.chunks():
            out.write(chunk)
    finally:
        await db.dispose()
    return table.rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export ratings as GB/T 39046-2020 表9 rows (CSV).")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True, help="last day, included")
    parser.add_argument("--output", type=Path, help="the CSV file to write (default: standard output)")
    args = parser.parse_args(argv)
    if args.last < args.first:
        parser.error("--to is before --from")
    settings = get_settings()
    if args.output is None:
        rows = asyncio.run(export(settings, args.first, args.last, sys.stdout))
    else:
        # newline="": the CSV's own CRLF line ends are written as they are.
        with args.output.open("w", encoding="utf-8", newline="") as out:
            rows = asyncio.run(export(settings, args.first, args.last, out))
    print(f"{rows} rating(s) exported", file=sys.stderr)


if __name__ == "__main__":
    main()
