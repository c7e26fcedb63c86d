"""Many ratings at once (POST /api/v1/ratings:batch, python -m runtime.import_ratings): sorting them before writing.

`prepare` judges every item of a chunk with a handful of queries, not a few per item: the records in
one query, the ratings they have in another, the policy once per unit; what each rating covers (its
stage, the records of its bundle) is judged by models/bulk_coverage.py. Each item comes out refused
(with its field and reason), already done (the same rating was written before: a retry, answered as
the first time) or ready; the ready ones are written by models/rating_intake.py's `write_ratings`
(or, on PostgreSQL, by the import's COPY: runtime/import_copy.py) with the same rules as one rating.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import configure_mappers
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.bulk_coverage import Candidate, judge
from models.codes import CodeBook, code_book
from models.policy import PinnedPolicy
from models.policy_store import policy_for_unit
from models.rating_codes import CodeRefused, read_rating
from models.rating_coverage import Taken, among, read_coverage
from models.rating_intake import NoStaffToRate, RatingFields, RatingToWrite, check_targets
from models.rating_timing import BulkTiming, one_at_a_time
from models.ratings import RatingAccepted, RatingCreate
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
    """Judge each item against the records, the ratings already written and the codes; write nothing.

    The records the items cover stay locked until the caller's commit (models/rating_coverage.py).
    """
    book = book or code_book()
    records = await _records(session, {item.body.record_no for item in items})
    judged: dict[int, Prepared] = {}
    timing = BulkTiming(session)  # the 补充评价 window, judged at each rating's own time (an import's 评价时间)
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
            fields = read_coverage(item.body, record, fields, source_system, book)
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
        if (alone := one_at_a_time(fields)) is not None:
            judged[item.position] = ItemRefused(item.position, alone.code, alone.message, alone.field)
            continue
        candidates.append((item, record, fields, pinned))

    verdicts = await judge(
        session,
        [Candidate(item.position, record, fields) for item, record, fields, _ in candidates],
        source_system,
        book,
    )
    for item, record, fields, pinned in candidates:
        verdict = verdicts[item.position]
        if isinstance(verdict, Taken):
            judged[item.position] = ItemRefused(
                item.position, verdict.code, verdict.message, verdict.field, verdict.value
            )
        elif isinstance(verdict, RatingAccepted):
            judged[item.position] = ItemDone(item.position, verdict)
        else:
            late = await timing.refusal(record, fields, pinned.profile.rating)
            judged[item.position] = (
                ItemRefused(item.position, late.code, late.message, late.field, record.record_no)
                if late is not None
                else ItemReady(item.position, RatingToWrite(record, fields, pinned, copies=verdict))
            )
    return [judged[item.position] for item in items]


async def _records(session: AsyncSession, record_nos: Iterable[str]) -> dict[str, ServiceRecord]:
    """The records by number, read as plain rows (an import reads thousands per chunk; ORM loading costs more)."""
    configure_mappers()  # model_construct skips what an ORM load would set up first (a no-op after the first time)
    columns = list(ServiceRecord.__table__.columns)  # type: ignore[attr-defined]
    query = select(*columns).where(await among(session, col(ServiceRecord.record_no), sorted(record_nos)))
    rows = (await (await session.connection()).execute(query)).mappings().all()
    return {row["record_no"]: ServiceRecord.model_construct(**row) for row in rows}
