"""The import's PostgreSQL writer: a chunk's ratings through COPY, in one transaction with their cases.

Rating ids are drawn from the table's sequence first, so the rows can go through COPY (psycopg's
`cursor.copy`, the database's own bulk path) and still be known by id. Each row's values come from
intake's own `rating_values` (models/rating_intake.py), with rater contact encrypted by the column's
own type. A bad rating then gets its case and outbox row from intake's `open_case`, and every rating
the rows `stage_with_ratings` adds to any rating's transaction (its upstream push, its fingerprint),
built for COPY by runtime/import_side_rows.py; all before the one commit. A bundle rating's copies
(models/rating_coverage.py) go through the same COPY, pointing at their lead. A rating written meanwhile by another path for the same record and target makes
COPY fail on the unique constraint: the caller rolls the chunk back and judges it again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from config import Settings
from models.bulk_intake import ItemReady
from models.pii import EncryptedText
from models.rating_intake import open_case, rating_values
from models.ratings import CoveredRating, Rating, RatingAccepted
from models.services import ServiceRecord
from runtime.import_side_rows import Written, copy_side_rows

RATING_COLUMNS = (
    "id", "record_id", "level", "channel", "target", "follow_up", "stage", "lead_rating_id", "answers", "comment",
    "real_name", "rater_name", "rater_phone", "rater_email", "is_bad", "adopted", "source_system", "submitted_at",
    "anonymised_at",
)  # fmt: skip
_COPY = f"COPY rating ({', '.join(RATING_COLUMNS)}) FROM STDIN"
_ENCRYPTED = EncryptedText()


async def copy_chunk(
    session: AsyncSession, settings: Settings, ready: Sequence[ItemReady], source_system: str
) -> list[RatingAccepted]:
    """Write the chunk's ratings, cases, outbox rows and side rows; the caller commits. Raises on a conflict."""
    if not ready:
        return []
    connection = await (await session.connection()).get_raw_connection()
    driver = connection.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection), "the COPY path is PostgreSQL's (psycopg)"
    # One id for each rating and for each copy of a bundle rating (models/rating_coverage.py), leads first.
    ids = iter(await _new_ids(session, len(ready) + sum(len(item.write.copies) for item in ready)))
    written: list[Written] = []
    leads: list[tuple[ServiceRecord, int, dict[str, Any]]] = []
    covered: list[list[CoveredRating]] = []
    async with driver.cursor() as cursor, cursor.copy(_COPY) as copy:
        for item in ready:
            record, fields, pinned = item.write.record, item.write.fields, item.write.pinned
            assert record.id is not None
            rating_id = next(ids)
            values = rating_values(record.id, fields, pinned, source_system)
            await copy.write_row(_copy_row(rating_id, values))
            leads.append((record, rating_id, values))
            covered.append([])
            for other in item.write.copies:
                assert other.id is not None
                copy_id, copy_values = next(ids), rating_values(other.id, fields, pinned, source_system, rating_id)
                await copy.write_row(_copy_row(copy_id, copy_values))
                written.append((other, copy_id, copy_values))
                covered[-1].append(CoveredRating(record_no=other.record_no, rating_id=copy_id))

    accepted = []
    for item, (record, rating_id, values), copied in zip(ready, leads, covered, strict=True):
        case_id = None
        if values["is_bad"]:  # rare: the rating as written, for intake's open_case (never added to the session)
            rating = Rating.model_construct(id=rating_id, **values)
            case_id = (await open_case(session, settings, record, rating, item.write.pinned)).workflow_input.case_id
        accepted.append(RatingAccepted(rating_id=rating_id, is_bad=values["is_bad"], case_id=case_id, covered=copied))
    await copy_side_rows(session, driver, settings, leads + written)
    await session.flush()
    return accepted


async def _new_ids(session: AsyncSession, count: int) -> list[int]:
    rows = await (await session.connection()).execute(
        text("SELECT nextval(pg_get_serial_sequence('rating', 'id')) FROM generate_series(1, :n)"), {"n": count}
    )
    return [row[0] for row in rows]


def _copy_row(rating_id: int, values: dict[str, Any]) -> tuple[Any, ...]:
    return (
        rating_id,
        values["record_id"],
        values["level"].value,
        values["channel"].value,
        values["target"].value,
        values["follow_up"],
        values["stage"].value,
        values["lead_rating_id"],
        json.dumps(values["answers"]),  # as SQLAlchemy's JSON type writes it
        values["comment"],
        values["real_name"],
        _ENCRYPTED.process_bind_param(values["rater_name"], None),
        _ENCRYPTED.process_bind_param(values["rater_phone"], None),
        _ENCRYPTED.process_bind_param(values["rater_email"], None),
        values["is_bad"],
        values["adopted"],
        values["source_system"],
        values["submitted_at"],
        None,  # anonymised_at: a rating just imported still holds what the retention job later removes
    )
