"""What a rating covers (评价对象、评价环节、一次办多件、一件事): its stage, and the records of its bundle.

A rating judges one target (事项, or the 工作人员 of a window transaction) of one stage of a record:
the whole transaction (整体), or 受理 / 办理 / 办结 where the source system rates stages separately
(`stages = true` in policy/sources/). Whole and stage ratings of one target never mix.

A record registered with a bundle (`bundle_no`, `bundle_kind`: visit 一次办多件, theme 一件事) may be
rated for the whole bundle (`covers = bundle`): the rating is written on the named record (the lead,
which alone carries a case) and copied onto each other record of the bundle (`lead_rating_id`), all in
one transaction. A staff rating is copied only onto the records the same staff member handled: each
copy rates its own record's staff member. Writers lock the records they cover before judging them
(`lock_records`), so two ratings of one bundle, or a whole and a stage rating of one record, cannot both
be written.
docs/intake.md has the rules; models/bulk_coverage.py judges a batch or an import chunk with these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, String, any_, bindparam, func, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case, CoveredRecordView
from models.codes import CodeBook, SourceCodes, code_book
from models.organisation import Unit
from models.rating_codes import CodeRefused
from models.rating_intake import AlreadyRated, RatingFields
from models.ratings import (
    SERVICE_STAGE_LABELS_ZH,
    CoveredRating,
    Covers,
    Rating,
    RatingCreate,
    RatingTarget,
    ServiceStage,
)
from models.services import BundleKind, ServiceItem, ServiceRecord

if TYPE_CHECKING:
    from models.rating_intake import RatingToWrite

BundleKey = tuple[str, str]  # (source_system, bundle_no): a bundle number is its registering system's own


class CoverageRefused(CodeRefused):
    """A stage the source does not rate, or covers = bundle for a record of no bundle (422; nothing written)."""


@dataclass(frozen=True)
class Taken:
    """Why a rating cannot be written: a record it covers is rated already, or rated the other way (stage/whole)."""

    code: str  # already_rated, bundle_record_rated, stage_conflict, duplicate_item
    message: str  # for people, in Chinese
    field: str
    value: str  # a record number, a target or a stage: never rater contact
    rating: Rating | None = None  # the rating in the way, if it is written already


class CoverageTaken(AlreadyRated):
    """A record the rating covers is taken (409); the refusal names the record and why."""

    def __init__(self, taken: Taken, target: RatingTarget) -> None:
        super().__init__(target)
        self.taken = taken


def read_coverage(
    body: RatingCreate, record: ServiceRecord, fields: RatingFields, source_system: str, book: CodeBook | None = None
) -> RatingFields:
    """The rating's stage (by name or the source's code) and its `covers`, checked. Raises CoverageRefused."""
    book = book or code_book()
    stage = _stage(body, book.source(source_system), source_system)
    if body.covers == Covers.BUNDLE and record.bundle_no is None:
        raise CoverageRefused(
            "not_in_bundle", "covers", Covers.BUNDLE.value, source_system,
            f"办件 {record.record_no} 不属于任何一次办多件批次或一件事，不能按 covers = bundle 评价",
        )  # fmt: skip
    if stage == fields.stage and body.covers == fields.covers:
        return fields
    return replace(fields, stage=stage, covers=body.covers)


def _stage(body: RatingCreate, source: SourceCodes | None, source_system: str) -> ServiceStage:
    if body.stage is not None and body.stage_code is not None:
        raise CoverageRefused(
            "both_given", "stage_code", body.stage_code, source_system,
            f"stage（{body.stage.value}）与 stage_code（{body.stage_code}）只能给出一个（来源系统 {source_system}）",
        )  # fmt: skip
    field, value = "stage", (body.stage or ServiceStage.WHOLE).value
    stage = body.stage or ServiceStage.WHOLE
    if body.stage_code is not None:
        field, value = "stage_code", body.stage_code
        if source is None or not source.stage_codes:
            raise CoverageRefused(
                "no_code_table", field, value, source_system,
                f"来源系统 {source_system} 未配置评价环节代码（policy/sources/ 的 stage_codes），无法解读代码 {value}",
            )  # fmt: skip
        found = source.stage_codes.get(body.stage_code)
        if found is None:
            raise CoverageRefused(
                "unknown_code", field, value, source_system,
                f"来源系统 {source_system} 的评价环节代码中没有 {value}（有：{'、'.join(source.stage_codes)}）",
            )  # fmt: skip
        stage = found
    if stage != ServiceStage.WHOLE and not (source is not None and source.stages):
        raise CoverageRefused(
            "stage_not_rated", field, value, source_system,
            f"来源系统 {source_system} 不分环节评价（policy/sources/ 未设 stages = true），"
            f"不能单独评价{SERVICE_STAGE_LABELS_ZH[stage]}环节；请按整体评价（不传 {field}）",
        )  # fmt: skip
    return stage


def effective_covers(record: ServiceRecord, covers: Covers | None, book: CodeBook) -> Covers:
    """What a rating of this record applies to: as asked, else a visit's whole bundle, else the theme's setting."""
    if record.bundle_no is None:
        return Covers.RECORD
    if covers is not None:
        return covers
    if record.bundle_kind == BundleKind.THEME:
        # The system that registered the 一件事 says how its items are rated (policy/sources/ theme_covers).
        source = book.source(record.source_system)
        return source.theme_covers if source is not None else Covers.BUNDLE
    return Covers.BUNDLE


def is_follow_up(fields: RatingFields) -> bool:
    """A 追评: it follows its own rating of the record (models/rating_timing.py), is never copied nor judged here."""
    return fields.follow_up != 0


def bundle_key(record: ServiceRecord) -> BundleKey | None:
    return (record.source_system, record.bundle_no) if record.bundle_no is not None else None


async def bundle_members(session: AsyncSession, keys: Iterable[BundleKey]) -> dict[BundleKey, list[ServiceRecord]]:
    """The records of these bundles, by bundle, in record id order (one query; none without bundles)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = (
        await session.exec(
            select(ServiceRecord)
            .where(tuple_(col(ServiceRecord.source_system), col(ServiceRecord.bundle_no)).in_(wanted))
            .order_by(col(ServiceRecord.id))
        )
    ).all()
    members: dict[BundleKey, list[ServiceRecord]] = {}
    for record in found:
        key = bundle_key(record)
        assert key is not None
        members.setdefault(key, []).append(record)
    return members


def copies_for(
    record: ServiceRecord, target: RatingTarget, covers: Covers, members: Mapping[BundleKey, list[ServiceRecord]]
) -> tuple[ServiceRecord, ...]:
    """The other records a rating of `record` is written on: none, or the bundle's (a staff rating: same staff only)."""
    key = bundle_key(record)
    if covers == Covers.RECORD or key is None:
        return ()
    return tuple(
        other
        for other in members.get(key, [])
        if other.id != record.id and (target == RatingTarget.ITEM or other.staff_id == record.staff_id)
    )


async def lock_records(session: AsyncSession, record_ids: Iterable[int]) -> None:
    """Hold the records until commit, in id order (no deadlock between two writers).

    The ratings are read by the caller in a statement of their own, after the lock is granted: a
    statement that waited for a lock still sees the tables as they were when it began (READ COMMITTED),
    so one that locked and read the ratings together would miss the rating its lock waited for.

    PostgreSQL: FOR NO KEY UPDATE, so writers of ratings wait for each other, while rows that merely
    reference a record (an invitation, a rating's foreign key check) do not. SQLite has one writer at
    a time for the whole file, and its driver starts a transaction only at the first write: a write
    that changes nothing takes that lock now, so what is read next stays true until the commit.
    """
    ids = sorted(set(record_ids))
    connection = await session.connection()
    if not ids:
        return
    if connection.dialect.name == "sqlite":
        await connection.execute(
            update(ServiceRecord)
            .where(col(ServiceRecord.id) == ids[0])
            .values(source_system=ServiceRecord.source_system)
        )
        return
    await connection.execute(
        select(ServiceRecord.id)
        .where(col(ServiceRecord.id) == any_(bindparam(None, ids, type_=ARRAY(Integer))))
        .order_by(col(ServiceRecord.id))
        .with_for_update(key_share=True)
    )


@dataclass(frozen=True)
class Existing:
    """A rating a record has, with its record number and the case of its lead (a copy's case is its lead's)."""

    rating: Rating
    record_no: str
    case_id: int | None


async def ratings_of(session: AsyncSession, record_ids: Iterable[int]) -> dict[int, list[Existing]]:
    """The first ratings (not 追评) of these records, by record: usually none (a small index-only query first)."""
    ids = sorted(set(record_ids))
    if not ids:
        return {}
    of_records = await among(session, col(Rating.record_id), ids)
    rated = (await session.exec(select(Rating.id).where(of_records, col(Rating.follow_up) == 0))).all()
    if not rated:
        return {}
    rows = (
        await session.exec(
            select(Rating, ServiceRecord.record_no, Case.id)
            .join(ServiceRecord, col(ServiceRecord.id) == col(Rating.record_id))
            .join(Case, col(Case.rating_id) == func.coalesce(col(Rating.lead_rating_id), col(Rating.id)), isouter=True)
            .where(col(Rating.id).in_(rated))
            .order_by(col(Rating.id))
        )
    ).all()
    found: dict[int, list[Existing]] = {}
    for rating, record_no, case_id in rows:
        found.setdefault(rating.record_id, []).append(Existing(rating, record_no, case_id))
    return found


def first_taken(
    record: ServiceRecord,
    copies: Sequence[ServiceRecord],
    fields: RatingFields,
    existing: Mapping[int, list[Existing]],
) -> Taken | None:
    """The first record the rating covers whose target is rated at this stage, or the other way (whole/stage)."""
    if not existing:  # an import's usual chunk: none of its records is rated yet
        return None
    for covered in (record, *copies):
        assert covered.id is not None
        for found in existing.get(covered.id, []):
            if found.rating.target != fields.target:
                continue
            if found.rating.stage == fields.stage:
                if covered.id == record.id:
                    return already_rated(record.record_no, fields, found.rating)
                return Taken(
                    "bundle_record_rated",
                    f"本评价适用于{bundle_words(record)}的全部办件，其中办件 {covered.record_no} 的{_target_zh(fields.target)}"
                    f"{_stage_zh(fields.stage)}已评价过，未写入任何评价；只评价本办件请传 covers = record",
                    "covers",
                    covered.record_no,
                    found.rating,
                )
            if (found.rating.stage == ServiceStage.WHOLE) != (fields.stage == ServiceStage.WHOLE):
                return stage_conflict(covered.record_no, fields, found.rating.stage, found.rating)
    return None


def already_rated(record_no: str, fields: RatingFields, rating: Rating | None = None) -> Taken:
    stage = fields.stage
    each = "每个对象只能评价一次" if stage == ServiceStage.WHOLE else "每个对象的每个环节只能评价一次"
    return Taken(
        "already_rated",
        f"办件 {record_no} 的{_target_zh(fields.target)}{_stage_zh(stage)}已评价过，{each}",
        "target" if stage == ServiceStage.WHOLE else "stage",
        fields.target.value if stage == ServiceStage.WHOLE else stage.value,
        rating,
    )


def stage_conflict(record_no: str, fields: RatingFields, other: ServiceStage, rating: Rating | None = None) -> Taken:
    """A whole rating where the target is rated by stage, or a stage rating where it is rated as a whole."""
    target = _target_zh(fields.target)
    message = (
        f"办件 {record_no} 的{target}已按环节（{SERVICE_STAGE_LABELS_ZH[other]}）评价，不能再作整体评价"
        if fields.stage == ServiceStage.WHOLE
        else f"办件 {record_no} 的{target}已作整体评价，不能再分环节（{SERVICE_STAGE_LABELS_ZH[fields.stage]}）评价"
    )
    return Taken("stage_conflict", message, "stage", fields.stage.value, rating)


def bundle_words(record: ServiceRecord) -> str:
    """How the bundle is named to people: 同批次（一次办多件） or 一件事「name」."""
    if record.bundle_kind == BundleKind.THEME:
        return f"一件事「{record.theme_name}」" if record.theme_name else "一件事"
    return "同批次（一次办多件）"


async def cover(
    session: AsyncSession, writes: Sequence[RatingToWrite], book: CodeBook | None = None
) -> list[RatingToWrite]:
    """One record's ratings with the records each covers, locked and checked; raises CoverageTaken (rolled back)."""
    book = book or code_book()
    members = await bundle_members(session, [key for w in writes if (key := bundle_key(w.record)) is not None])
    covered = [
        replace(w, copies=copies_for(w.record, w.fields.target, effective_covers(w.record, w.fields.covers, book), members))
        if not is_follow_up(w.fields) else w  # a 追评 follows its own rating (models/rating_timing.py), never copied
        for w in writes
    ]  # fmt: skip
    ids = [r.id for w in covered for r in (w.record, *w.copies) if r.id is not None]
    await lock_records(session, ids)
    existing = await ratings_of(session, ids)
    for write in covered:
        if is_follow_up(write.fields):
            continue
        taken = first_taken(write.record, write.copies, write.fields, existing)
        if taken is not None:
            await session.rollback()
            raise CoverageTaken(taken, write.fields.target)
    return covered


async def covered_ratings(session: AsyncSession, lead_ids: Iterable[int]) -> dict[int, list[CoveredRating]]:
    """The copies of these lead ratings, by lead, with their records' numbers (one query)."""
    ids = sorted(set(lead_ids))
    if not ids:
        return {}
    rows = (
        await session.exec(
            select(Rating.lead_rating_id, Rating.id, ServiceRecord.record_no)
            .join(ServiceRecord, col(ServiceRecord.id) == col(Rating.record_id))
            .where(col(Rating.lead_rating_id).in_(ids))
            .order_by(col(Rating.id))
        )
    ).all()
    found: dict[int, list[CoveredRating]] = {}
    for lead_id, rating_id, record_no in rows:
        assert lead_id is not None and rating_id is not None
        found.setdefault(lead_id, []).append(CoveredRating(record_no=record_no, rating_id=rating_id))
    return found


async def covered_records(session: AsyncSession, lead_id: int) -> list[CoveredRecordView]:
    """The other records a lead rating was written on, with their items and units, for its case page."""
    rows = (
        await session.exec(
            select(Rating.id, ServiceRecord.record_no, ServiceItem.name, Unit.name)
            .join(ServiceRecord, col(ServiceRecord.id) == col(Rating.record_id))
            .join(ServiceItem, col(ServiceItem.id) == col(ServiceRecord.item_id))
            .join(Unit, col(Unit.id) == col(ServiceRecord.unit_id))
            .where(Rating.lead_rating_id == lead_id)
            .order_by(col(Rating.id))
        )
    ).all()
    return [
        CoveredRecordView(record_no=record_no, item_name=item_name, unit_name=unit_name, rating_id=rating_id)
        for rating_id, record_no, item_name, unit_name in rows
    ]


async def among(session: AsyncSession, column: Any, values: list[Any]) -> Any:
    """`column IN values`: one array parameter on PostgreSQL (an import asks about thousands of records)."""
    if (await session.connection()).dialect.name == "postgresql":
        kind = ARRAY(Integer) if values and isinstance(values[0], int) else ARRAY(String)
        return column == any_(bindparam(None, values, type_=kind))
    return column.in_(values)


def _target_zh(target: RatingTarget) -> str:
    return "事项" if target == RatingTarget.ITEM else "工作人员"


def _stage_zh(stage: ServiceStage) -> str:
    return "" if stage == ServiceStage.WHOLE else f"（{SERVICE_STAGE_LABELS_ZH[stage]}环节）"
