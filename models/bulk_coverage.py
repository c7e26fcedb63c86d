"""Judging what each rating of a batch or an import chunk covers, against what is written and the chunk itself.

models/bulk_intake.py reads the chunk's records and each item's rating; this decides, for every item
in order, with a few queries for the whole chunk (the bundles' records, a lock on every record
covered, the ratings they have): ready (with the records it is copied onto), done already (the same
rating was written before: a retry, answered as the first time), or taken (why, naming the record).
The rules are models/rating_coverage.py's, so a batch item is judged as a single rating would be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from models.codes import CodeBook
from models.rating_coverage import (
    Existing,
    Taken,
    bundle_key,
    bundle_members,
    copies_for,
    covered_ratings,
    effective_covers,
    first_taken,
    is_follow_up,
    lock_records,
    ratings_of,
    stage_conflict,
)
from models.rating_intake import RatingFields
from models.ratings import CoveredRating, Rating, RatingAccepted, RatingTarget, ServiceStage
from models.services import ServiceRecord


@dataclass(frozen=True)
class Candidate:
    """An item whose record and rating were read: `position` is its index in a batch or its row in a file."""

    position: int
    record: ServiceRecord
    fields: RatingFields


Judged = tuple[ServiceRecord, ...] | RatingAccepted | Taken  # ready (its copies), done, or taken


async def judge(
    session: AsyncSession, candidates: Sequence[Candidate], source_system: str, book: CodeBook
) -> dict[int, Judged]:
    """Each candidate, by position: its copies if it may be written, its earlier answer, or why it is taken."""
    members = await bundle_members(session, [key for c in candidates if (key := bundle_key(c.record)) is not None])
    copies = {
        c.position: copies_for(c.record, c.fields.target, effective_covers(c.record, c.fields.covers, book), members)
        if c.record.bundle_no is not None and not is_follow_up(c.fields)
        else ()
        for c in candidates
    }
    ids = [r.id for c in candidates for r in (c.record, *copies[c.position]) if r.id is not None]
    await lock_records(session, ids)  # held to the chunk's commit: what is judged here stays true until written
    existing = await ratings_of(session, ids)
    leads_done = await covered_ratings(session, _same_leads(candidates, existing, source_system)) if existing else {}
    claimed: dict[tuple[int | None, RatingTarget], list[tuple[int, ServiceStage]]] = {}
    judged: dict[int, Judged] = {}
    for c in candidates:
        covered = copies[c.position]
        if is_follow_up(c.fields):  # a 追评 is judged by its own rules (models/rating_timing.py)
            judged[c.position] = covered
            continue
        taken = first_taken(c.record, covered, c.fields, existing)
        if taken is not None:
            earlier = taken.rating if taken.code == "already_rated" else None
            same = earlier is not None and same_rating(earlier, c.fields, source_system)
            judged[c.position] = _answer(earlier, existing, leads_done) if earlier is not None and same else taken
            continue
        clash = _claim(c, covered, claimed)
        judged[c.position] = covered if clash is None else clash
    return judged


def _claim(
    c: Candidate,
    covered: Sequence[ServiceRecord],
    claimed: dict[tuple[int | None, RatingTarget], list[tuple[int, ServiceStage]]],
) -> Taken | None:
    """Claim the records this item covers, unless an earlier item of the chunk rates one: same stage, or the other way."""
    target, own = c.fields.target, c.fields.stage
    records = (c.record, *covered)
    for record in records:
        for position, stage in claimed.get((record.id, target), ()):
            if stage == own:
                field, value = ("target", c.fields.target.value) if record is c.record else ("covers", record.record_no)
                return Taken(
                    "duplicate_item",
                    f"与第 {position} 项评价同一办件的同一对象（{record.record_no}），每个对象只能评价一次",
                    field,
                    value,
                )
            if (stage == ServiceStage.WHOLE) != (own == ServiceStage.WHOLE):
                conflict = stage_conflict(record.record_no, c.fields, stage)
                return Taken(conflict.code, f"{conflict.message}（第 {position} 项）", conflict.field, conflict.value)
    for record in records:
        claimed.setdefault((record.id, target), []).append((c.position, own))
    return None


def _same_leads(
    candidates: Sequence[Candidate], existing: Mapping[int, list[Existing]], source_system: str
) -> set[int]:
    """The lead ratings an item may be a retry of: their copies are part of the first answer."""
    leads = set()
    for c in candidates:
        assert c.record.id is not None
        for found in existing.get(c.record.id, []):
            rating = found.rating
            retry = (rating.target, rating.stage, rating.lead_rating_id) == (c.fields.target, c.fields.stage, None)
            if retry and rating.id is not None and same_rating(rating, c.fields, source_system):
                leads.add(rating.id)
    return leads


def _answer(
    rating: Rating, existing: Mapping[int, list[Existing]], leads_done: Mapping[int, list[CoveredRating]]
) -> RatingAccepted:
    """The answer a retried item gets: the rating written the first time, its case (a copy's: its lead's), its copies."""
    assert rating.id is not None
    found = next(e for e in existing.get(rating.record_id, []) if e.rating.id == rating.id)
    return RatingAccepted(
        rating_id=rating.id, is_bad=rating.is_bad, case_id=found.case_id, covered=leads_done.get(rating.id, [])
    )


def same_rating(rating: Rating, fields: RatingFields, source_system: str) -> bool:
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
