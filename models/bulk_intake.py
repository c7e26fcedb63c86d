"""Many ratings at once (POST /api/v1/ratings:batch, python -m runtime.import_ratings): sorting them before writing.

`prepare` judges every item of a chunk with a handful of queries, not a few per item: the records in
one query, the ratings they have in another, the policy once per unit. Each item comes out refused
(with its field and reason), already done (the same rating was written before: a retry, answered as
the first time) or ready; the ready ones are written by models/rating_intake.py's `write_ratings`
(or, on PostgreSQL, by the import's COPY: runtime/import_copy.py) with the same rules as one rating.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import configure_mappers
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case
from models.codes import CodeBook
from models.policy import PinnedPolicy
from models.policy_store import policy_for_unit
from models.rating_codes import CodeRefused, read_rating
from models.rating_intake import NoStaffToRate, RatingFields, RatingToWrite, check_targets
from models.ratings import Rating, RatingAccepted, RatingCreate
from models.services import ServiceRecord


@dataclass(frozen=True)
class IntakeItem:
    """One rating as sent: `position` is its index in a batch or its row in a file."""

    position: int
    body: RatingCreate
    submitted_at: datetime | None = None


@dataclass(frozen=True)
class ItemRefused:
    position: int
    code: str
    message: str  # for people, in Chinese
    field: str | None = None
    value: str | None = None  # only codes and record numbers: never rater contact
    source: str | None = None


@dataclass(frozen=True)
class ItemReady:
    position: int
    write: RatingToWrite


@dataclass(frozen=True)
class ItemDone:
    """Written before with the same content (a retried item): answered as it was the first time."""

    position: int
    accepted: RatingAccepted


Prepared = ItemRefused | ItemReady | ItemDone


@dataclass
class PolicyCache:
    """The policy version of each unit, looked up once for a batch or a whole import."""

    by_unit: dict[int, PinnedPolicy] = field(default_factory=dict)

    async def of(self, session: AsyncSession, unit_id: int) -> PinnedPolicy:
        if unit_id not in self.by_unit:
            self.by_unit[unit_id] = await policy_for_unit(session, unit_id)
        return self.by_unit[unit_id]


async def prepare(
    session: AsyncSession,
    items: Sequence[IntakeItem],
    source_system: str,
    policies: PolicyCache,
    book: CodeBook | None = None,
) -> list[Prepared]:
    """Judge each item against the records, the ratings already written and the codes; write nothing."""
    records = await _records(session, {item.body.record_no for item in items})
    judged: dict[int, Prepared] = {}
    candidates: list[tuple[IntakeItem, ServiceRecord, RatingFields, PinnedPolicy]] = []
    for item in items:
        record = records.get(item.body.record_no)
        if record is None:
            judged[item.position] = ItemRefused(
                item.position,
                "unknown_record",
                f"办件编号 {item.body.record_no} 未登记",
                "record_no",
                item.body.record_no,
            )
            continue
        pinned = await policies.of(session, record.unit_id)
        try:
            fields = read_rating(item.body, source_system, pinned.profile.tags, book, item.submitted_at)
            check_targets(record, [fields])
        except CodeRefused as refused:
            judged[item.position] = ItemRefused(
                item.position, refused.code, refused.message, refused.field, refused.value, refused.source
            )
            continue
        except NoStaffToRate:
            judged[item.position] = ItemRefused(
                item.position, "no_staff_to_rate", "该办件没有经办工作人员，只能评价事项", "target", "staff"
            )
            continue
        candidates.append((item, record, fields, pinned))

    existing = await _ratings_of(session, {record.id for _, record, _, _ in candidates if record.id is not None})
    first_at: dict[tuple[int | None, str], int] = {}
    for item, record, fields, pinned in candidates:
        key = (record.id, fields.target.value)
        earlier = existing.get(key)
        if earlier is not None:
            rating, case_id = earlier
            judged[item.position] = (
                ItemDone(item.position, _accepted(rating, case_id))
                if _same(rating, fields, source_system)
                else ItemRefused(
                    item.position,
                    "already_rated",
                    f"办件 {record.record_no} 的{_target_zh(fields)}已评价过，每个对象只能评价一次",
                    "target",
                    fields.target.value,
                )
            )
        elif key in first_at:
            judged[item.position] = ItemRefused(
                item.position,
                "duplicate_item",
                f"与第 {first_at[key]} 项评价同一办件的同一对象（{record.record_no}），每个对象只能评价一次",
                "target",
                fields.target.value,
            )
        else:
            first_at[key] = item.position
            judged[item.position] = ItemReady(item.position, RatingToWrite(record, fields, pinned))
    return [judged[item.position] for item in items]


async def _records(session: AsyncSession, record_nos: Iterable[str]) -> dict[str, ServiceRecord]:
    """The records by number, read as plain rows (an import reads thousands per chunk; ORM loading costs more)."""
    configure_mappers()  # model_construct skips what an ORM load would set up first (a no-op after the first time)
    columns = list(ServiceRecord.__table__.columns)  # type: ignore[attr-defined]
    query = select(*columns).where(await _among(session, col(ServiceRecord.record_no), sorted(record_nos)))
    rows = (await (await session.connection()).execute(query)).mappings().all()
    return {row["record_no"]: ServiceRecord.model_construct(**row) for row in rows}


async def _ratings_of(
    session: AsyncSession, record_ids: set[int]
) -> dict[tuple[int | None, str], tuple[Rating, int | None]]:
    """The ratings these records have, with their case ids, by (record, target): usually none (one small query)."""
    if not record_ids:
        return {}
    rated = (
        await session.exec(select(Rating.id).where(await _among(session, col(Rating.record_id), sorted(record_ids))))
    ).all()
    if not rated:
        return {}
    rows = (
        await session.exec(
            select(Rating, Case.id)
            .join(Case, col(Case.rating_id) == col(Rating.id), isouter=True)
            .where(col(Rating.id).in_(rated))
        )
    ).all()
    return {(rating.record_id, rating.target.value): (rating, case_id) for rating, case_id in rows}


async def _among(session: AsyncSession, column: Any, values: list[Any]) -> Any:
    """`column IN values`: one array parameter on PostgreSQL (thousands of placeholders cost more to send and parse)."""
    if (await session.connection()).dialect.name == "postgresql":
        kind = ARRAY(Integer) if values and isinstance(values[0], int) else ARRAY(String)
        return column == any_(bindparam(None, values, type_=kind))
    return column.in_(values)


def _same(rating: Rating, fields: RatingFields, source_system: str) -> bool:
    """The same rating sent again: every field the rater gave, from the same system (and at the same time, if given)."""
    same_time = fields.submitted_at is None or abs((rating.submitted_at - fields.submitted_at).total_seconds()) < 1
    return same_time and (
        rating.source_system,
        rating.level,
        rating.channel,
        rating.answers,
        rating.comment,
        rating.real_name,
        rating.rater_name,
        rating.rater_phone,
        rating.rater_email,
    ) == (
        source_system,
        fields.level,
        fields.channel,
        fields.answers,
        fields.comment,
        fields.real_name,
        fields.rater_name,
        fields.rater_phone,
        fields.rater_email,
    )


def _accepted(rating: Rating, case_id: int | None) -> RatingAccepted:
    assert rating.id is not None
    return RatingAccepted(rating_id=rating.id, is_bad=rating.is_bad, case_id=case_id)


def _target_zh(fields: RatingFields) -> str:
    return "事项" if fields.target.value == "item" else "工作人员"
