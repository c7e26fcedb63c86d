"""Export cases as GB/T 39046-2020 表10 or 表11 rows (CSV), the same files as GET /api/v1/exports/table10.csv and
table11.csv.

    python -m runtime.export_cases --table 10 --from 2026-11-01 --to 2026-11-30 [--unit YT-SCJ] [--region 370600]
                                   [--output 表10.csv]

Days are China time, both included: 表10 takes the cases opened in them, 表11 the reminders and
escalations that happened in them. --unit (a unit's code) takes that unit and every unit below it.
Without --output the CSV goes to standard output; progress goes to standard error. The export is
recorded in the audit log as done by the operator's command ("system").
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import TextIO

from fastapi import HTTPException
from sqlmodel import select

from api.case_export import AUDIT_ACTIONS, CaseTableExport, Table, check_period, export_scope
from config import Settings, get_settings
from models.audit import audit
from models.db import Database, utcnow
from models.national_tables.common import ExportFilter
from models.organisation import Unit
from models.table9_export import day_range


async def export(
    settings: Settings, table: Table, first: date, last: date, unit_code: str | None, region: str | None,
    out: TextIO, progress: TextIO = sys.stderr,
) -> int:  # fmt: skip
    """Write the CSV to `out`; returns how many rows it holds. A unit or region that does not exist is a ValueError."""
    db = Database(settings.async_sqlalchemy_url)
    try:
        async with db.session() as session:
            unit_id = None
            if unit_code is not None:
                unit_id = (await session.exec(select(Unit.id).where(Unit.code == unit_code))).first()
                if unit_id is None:
                    raise ValueError(f"--unit {unit_code!r}: no unit has this code")
            try:
                units, region_id = await export_scope(session, None, unit_id, region)
            except HTTPException as exc:
                raise ValueError(f"--region {region!r}: {_message(exc)}") from exc
            filters = {"from": first.isoformat(), "to": last.isoformat(), "unit": unit_code, "region": region}
            audit(
                session,
                actor="system",
                actor_role="",
                action=AUDIT_ACTIONS[table],
                target_type="case_export",
                target_id=f"{first.isoformat()}..{last.isoformat()}",
                reason="runtime.export_cases",
                after={k: v for k, v in filters.items() if v is not None},
            )
            await session.commit()
        exported = CaseTableExport(db, table, ExportFilter(*day_range(first, last), units, region_id), utcnow())
        said = 0
        async for chunk in exported.chunks():
            out.write(chunk)
            if exported.rows != said:  # a batch of only skipped events adds no row: say nothing new
                said = exported.rows
                print(f"表{table}: {said} row(s) written", file=progress, flush=True)
    finally:
        await db.dispose()
    return exported.rows


def _message(exc: HTTPException) -> str:
    return str(exc.detail["message"]) if isinstance(exc.detail, dict) else str(exc.detail)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export cases as GB/T 39046-2020 表10 or 表11 rows (CSV).")
    parser.add_argument(
        "--table", choices=["10", "11"], required=True, help="10: a row per case; 11: per reminder or escalation"
    )
    parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True, help="last day, included")
    parser.add_argument("--unit", help="a unit's code: that unit and every unit below it")
    parser.add_argument("--region", help="行政区划代码 of the cases' units")
    parser.add_argument("--output", type=Path, help="the CSV file to write (default: standard output)")
    args = parser.parse_args(argv)
    try:
        check_period(args.first, args.last)
    except HTTPException as exc:
        parser.error(f"--to: {_message(exc)}")
    settings = get_settings()
    try:
        if args.output is None:
            rows = asyncio.run(export(settings, args.table, args.first, args.last, args.unit, args.region, sys.stdout))
        else:
            # newline="": the CSV's own CRLF line ends are written as they are.
            with args.output.open("w", encoding="utf-8", newline="") as out:
                rows = asyncio.run(export(settings, args.table, args.first, args.last, args.unit, args.region, out))
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"表{args.table}: {rows} row(s) exported", file=sys.stderr)


if __name__ == "__main__":
    main()
