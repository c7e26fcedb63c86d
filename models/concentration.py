"""Concentrated problems (差评集中事项): items, units and staff whose bad reviews cluster in a period.

A problem is concentrated when at least `min_bad` adopted bad reviews (`Rating.adopted`: an upheld
appeal takes a review out) of one item (事项), one unit (承办单位) or one staff member (工作人员) were
given within `within` up to the moment looked at — the profile's `[concentration]`. Each rater's
rating of a transaction counts once: follow-up ratings (追评) and the copies of a bundle rating
(一次办多件, 一件事) are not counted again. Units and items count every bad review of the unit's
transactions; a staff member counts the reviews that rated them (评价对象 工作人员).

With each problem: its common complaints (the common words of the comments,
models/concentration_keywords.py, and the content tags 测评内容 raters picked), and its cases, with
those already in an open root-cause rectification marked (docs/root-cause.md).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case
from models.concentration_keywords import common_words
from models.organisation import Staff, Unit
from models.policy import ConcentrationRules, TagCatalogue
from models.ratings import TAGS_ANSWER_KEY, Rating, RatingTarget
from models.root_cause import RootCauseLink
from models.services import ServiceItem, ServiceRecord


class ConcentrationKind(StrEnum):
    ITEM = "item"  # 事项
    UNIT = "unit"  # 承办单位
    STAFF = "staff"  # 工作人员


KIND_LABELS_ZH = {ConcentrationKind.ITEM: "事项", ConcentrationKind.UNIT: "单位", ConcentrationKind.STAFF: "工作人员"}


class Keyword(BaseModel):
    word: str
    raters: int = Field(description="How many of the problem's bad reviews use the word")


class TagCount(BaseModel):
    label: str = Field(description="测评内容, e.g. 办事效率低")
    ratings: int


class ConcentratedProblem(BaseModel):
    key: str = Field(description='"<kind>:<id>", as a root-cause rectification records where it came from')
    kind: ConcentrationKind
    kind_label: str
    target_id: int = Field(description="The item's, unit's or staff member's id")
    name: str
    unit_id: int | None = Field(description="The unit concerned; none for an item whose reviews span units")
    unit_name: str
    bad_count: int
    first_at: datetime
    last_at: datetime
    keywords: list[Keyword]
    tags: list[TagCount]
    case_ids: list[int] = Field(description="The cases of its bad reviews, oldest first")
    cases_in_open_root_cause: list[int] = Field(
        description="Those of its cases already in an open root-cause rectification"
    )


@dataclass
class _Review:
    rating_id: int
    comment: str
    answers: dict[str, Any]
    at: datetime
    unit_id: int
    case_id: int | None


async def find_concentrated(
    session: AsyncSession,
    units: set[int] | None,
    until: datetime,
    rules: ConcentrationRules,
    tags: TagCatalogue,
    kind: ConcentrationKind | None = None,
) -> list[ConcentratedProblem]:
    """The concentrated problems among the bad reviews of these units (None: all) in the period ending at `until`."""
    since = until - rules.within.as_timedelta()
    query = (
        select(Rating, ServiceRecord, Case.id)
        .join(ServiceRecord, col(ServiceRecord.id) == Rating.record_id)
        .outerjoin(Case, col(Case.rating_id) == Rating.id)
        .where(
            col(Rating.is_bad) == True,  # noqa: E712
            col(Rating.adopted) == True,  # noqa: E712
            col(Rating.follow_up) == 0,
            col(Rating.lead_rating_id).is_(None),
            col(Rating.submitted_at) > since,
            col(Rating.submitted_at) <= until,
        )
        .order_by(col(Rating.submitted_at), col(Rating.id))
    )
    if units is not None:
        query = query.where(col(ServiceRecord.unit_id).in_(units))
    groups: dict[tuple[ConcentrationKind, int], list[_Review]] = defaultdict(list)
    for rating, record, case_id in (await session.exec(query)).all():
        assert rating.id is not None
        review = _Review(rating.id, rating.comment, rating.answers, rating.submitted_at, record.unit_id, case_id)
        groups[(ConcentrationKind.UNIT, record.unit_id)].append(review)
        groups[(ConcentrationKind.ITEM, record.item_id)].append(review)
        if rating.target == RatingTarget.STAFF and record.staff_id is not None:
            groups[(ConcentrationKind.STAFF, record.staff_id)].append(review)
    clustered = {
        key: reviews
        for key, reviews in groups.items()
        if len(reviews) >= rules.min_bad and (kind is None or key[0] == kind)
    }
    names = await _names(session, clustered)
    in_open = await _cases_in_open_root_cause(session, clustered)
    problems = [
        _problem(kind_, target, reviews, names, in_open, rules, tags) for (kind_, target), reviews in clustered.items()
    ]
    order = list(ConcentrationKind)
    return sorted(problems, key=lambda p: (-p.bad_count, order.index(p.kind), p.target_id))


def _problem(
    kind: ConcentrationKind,
    target: int,
    reviews: list[_Review],
    names: dict[tuple[str, int], str],
    in_open: set[int],
    rules: ConcentrationRules,
    tags: TagCatalogue,
) -> ConcentratedProblem:
    units = {r.unit_id for r in reviews}
    unit_id = units.pop() if len(units) == 1 else None
    tag_counts: Counter[str] = Counter()
    for review in reviews:
        picked = review.answers.get(TAGS_ANSWER_KEY) or []
        tag_counts.update(_tag_label(tag, tags) for tag in picked if isinstance(tag, str))
    case_ids = [r.case_id for r in reviews if r.case_id is not None]
    return ConcentratedProblem(
        key=f"{kind.value}:{target}",
        kind=kind,
        kind_label=KIND_LABELS_ZH[kind],
        target_id=target,
        name=names.get((kind.value, target), f"#{target}"),
        unit_id=unit_id,
        unit_name=names.get(("unit", unit_id), "") if unit_id is not None else "多个单位",
        bad_count=len(reviews),
        first_at=reviews[0].at,
        last_at=reviews[-1].at,
        keywords=[Keyword(word=w, raters=n) for w, n in common_words((r.comment for r in reviews), rules.keywords)],
        tags=[TagCount(label=label, ratings=n) for label, n in tag_counts.most_common()],
        case_ids=case_ids,
        cases_in_open_root_cause=[c for c in case_ids if c in in_open],
    )


def _tag_label(tag: str, catalogue: TagCatalogue) -> str:
    """ "very_dissatisfied/05" → 办事效率低 (the catalogue's words); an unknown tag as it was stored."""
    level, _, number = tag.partition("/")
    return catalogue.label(level, number) or tag


async def _names(
    session: AsyncSession, groups: dict[tuple[ConcentrationKind, int], list[_Review]]
) -> dict[tuple[str, int], str]:
    """The name of every item, unit and staff member the problems name, and of every unit they concern."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for (kind, target), reviews in groups.items():
        wanted[kind.value].add(target)
        wanted["unit"].update(r.unit_id for r in reviews)
    queries = {
        "item": select(ServiceItem.id, ServiceItem.name).where(col(ServiceItem.id).in_(wanted["item"])),
        "unit": select(Unit.id, Unit.name).where(col(Unit.id).in_(wanted["unit"])),
        "staff": select(Staff.id, Staff.name).where(col(Staff.id).in_(wanted["staff"])),
    }
    names: dict[tuple[str, int], str] = {}
    for table, query in queries.items():
        if wanted[table]:
            names.update(((table, row_id), name) for row_id, name in (await session.exec(query)).all() if row_id)
    return names


async def _cases_in_open_root_cause(
    session: AsyncSession, groups: dict[tuple[ConcentrationKind, int], list[_Review]]
) -> set[int]:
    case_ids = {r.case_id for reviews in groups.values() for r in reviews if r.case_id is not None}
    if not case_ids:
        return set()
    rows = await session.exec(select(RootCauseLink.open_case_id).where(col(RootCauseLink.open_case_id).in_(case_ids)))
    return {row for row in rows.all() if row is not None}
