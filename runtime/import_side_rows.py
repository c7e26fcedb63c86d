"""What every rating brings into its transaction (`stage_with_ratings`), built as plain rows for the import's COPY.

`stage_with_ratings` (models/rating_intake.py) stages, for each rating, its upstream push
(models/upstream.py) and its suspicion fingerprint (models/suspicion/intake.py) as ORM objects.
Building one costs about 100 µs in SQLModel: for a million imported ratings that alone is minutes,
more than everything else together (docs/measurements.md). So the import builds the same rows as
values and COPYs them:

- the push: the chunk's first rating gets its push from `enqueue_rating_pushes` itself; the others
  copy that row, with their own subject and a new push key (the only columns that differ per rating);
- the fingerprint: the same columns from the same keyed hashes (models/suspicion/keys.py).

tests/test_import_ratings.py compares both, column by column, with what `stage_with_ratings` stages
for the same ratings, and fails if it starts staging a table this module does not write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import Table
from sqlalchemy.types import TypeEngine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from config import Settings
from models.ratings import Rating, RatingTarget
from models.services import ServiceRecord
from models.suspicion.intake import GOOD_LEVELS
from models.suspicion.keys import client_key, content_key, phone_key
from models.suspicion.records import RatingFingerprint
from models.upstream import UpstreamPush, enqueue_rating_pushes

# (record, rating id, the rating's columns as models.rating_intake.rating_values gives them)
Written = tuple[ServiceRecord, int, dict[str, Any]]
SIDE_TABLES = frozenset({UpstreamPush.__tablename__, RatingFingerprint.__tablename__})


async def copy_side_rows(
    session: AsyncSession, driver: psycopg.AsyncConnection[Any], settings: Settings, written: Sequence[Written]
) -> None:
    """Stage the first rating's push through models/upstream.py and COPY the rest of the side rows."""
    if not written:
        return
    first_record, first_id, first_values = written[0]
    first = Rating.model_construct(id=first_id, **first_values)
    enqueue_rating_pushes(session, [first], settings.upstream_enabled)
    template = next(o for o in session.new if isinstance(o, UpstreamPush) and o.subject_id == first_id)
    await session.flush()  # the template push is written by the ORM, as intake would
    same = {name: getattr(template, name) for name in _columns(UpstreamPush) if name != "id"}
    pushes = [push_row(same, rating_id) for _, rating_id, _ in written[1:]]
    key = settings.signing_key()
    # As intake: a bundle rating's copies are the same act of rating, fingerprinted once (on the lead).
    fingerprints = [
        fingerprint_row(key, record, rating_id, values)
        for record, rating_id, values in written
        if values.get("lead_rating_id") is None
    ]
    await copy_rows(driver, UpstreamPush, pushes)
    await copy_rows(driver, RatingFingerprint, fingerprints)


def push_row(template: dict[str, Any], rating_id: int) -> dict[str, Any]:
    """Another rating's push: the template push's columns, with its own subject and push key."""
    return {**template, "subject_id": rating_id, "push_key": str(uuid.uuid4())}


def fingerprint_row(signing_key: str, record: ServiceRecord, rating_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """The columns models/suspicion/intake.py:fingerprint writes for this rating (no client: a file has none)."""
    content, chars = content_key(signing_key, values["comment"], values["answers"])
    return {
        "rating_id": rating_id,
        "record_id": record.id,
        "unit_id": record.unit_id,
        "staff_id": record.staff_id if values["target"] == RatingTarget.STAFF else None,
        "good": values["level"] in GOOD_LEVELS,
        "bad": values["is_bad"],
        "phone_key": phone_key(signing_key, values["rater_phone"]),
        "client_key": client_key(signing_key, None),
        "content_key": content,
        "content_chars": chars,
        "source_system": values["source_system"],
        "channel": values["channel"],
        "offset_seconds": int((values["submitted_at"] - record.completed_at).total_seconds()),
        "submitted_at": values["submitted_at"],
    }


async def copy_rows(driver: psycopg.AsyncConnection[Any], model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """COPY rows given by column name; they must name every column but a generated id, so none is left out."""
    if not rows:
        return
    names = [name for name in _columns(model) if name in rows[0]]
    missing = set(_columns(model)) - set(names) - {"id"}
    if missing or len(names) != len(rows[0]):
        raise ValueError(f"rows for {_table(model).name} do not match its columns: {sorted(missing or set(rows[0]))}")
    # Enums as their values and JSON as text, decided once per column by its type.
    convert = [(name, _converter(_table(model).columns[name].type)) for name in names]
    async with driver.cursor() as cursor, cursor.copy(f'COPY "{_table(model).name}" ({", ".join(names)}) FROM STDIN') as copy:  # fmt: skip
        for row in rows:
            await copy.write_row([row[name] if how is None else how(row[name]) for name, how in convert])


def _converter(kind: TypeEngine[Any]) -> Callable[[Any], Any] | None:
    if isinstance(kind, sa.Enum):
        return lambda value: value.value if isinstance(value, Enum) else value
    if isinstance(kind, sa.JSON):
        return json.dumps
    return None


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _columns(model: type[SQLModel]) -> list[str]:
    return [column.name for column in _table(model).columns]
