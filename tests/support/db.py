"""The test databases: migrating, emptying between tests, and reading a case's rows."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

import migrations
from models.case.records import Case, CaseEvent
from models.db import Database
from models.tables import metadata


def alembic_upgrade(url: str) -> None:
    migrations.upgrade(url)


def truncate_postgres(url: str) -> None:
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    engine = create_engine(url)
    try:
        for attempt in range(5):
            try:
                with engine.begin() as conn:
                    # A previous test's relay or worker may still be finishing a write: do not wait forever on it.
                    conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                return
            except OperationalError:  # a deadlock or lock timeout with such a straggler: try again
                if attempt == 4:
                    raise
                time.sleep(0.5)
    finally:
        engine.dispose()


async def case_events(db: Database, case_id: int) -> list[CaseEvent]:
    async with db.session() as session:
        return list(
            (
                await session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id)))
            ).all()
        )


async def case_row(db: Database, case_id: int) -> Case:
    async with db.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        return case
