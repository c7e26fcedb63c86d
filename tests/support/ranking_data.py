"""Hand-countable months for the ranking and monthly-report tests, written directly at chosen China times.

The demo seed gives region 1 (370600, Yantai's profile: scores 5/4/3/2/1), the office (unit 1) above
市场监管局 (2) and 人社局 (3), items 1–3, staff 1 (unit 2) and 2 (unit 3), and window 1 (YT-SCJ-01,
unit 2). `small_rules` stores a new version of the Yantai profile whose ranking needs 3 ratings and
flags the bottom 1 for 2 months running, so each month needs only a handful of rows.

| month | unit 2 | unit 3 | unit 4 甲局 | unit 5 乙局 | unit 6 丙局 |
| --- | --- | --- | --- | --- | --- |
| 2025-01 | 5 5 5 | 3 3 3 | — | — | — |
| 2025-02 | 3 3 3 | 5 5 5 | — | — | — |
| 2025-03 | 5 4 4 1 (a case, rectified late) | 5 5 4, and a 1 not adopted | 5 4 4 | 4 5 4 | 5 5 (too few) |
"""

from __future__ import annotations

import itertools
from datetime import datetime

from models.case.vocabulary import Outcome, Stage
from models.db import Database
from models.policy_store import add_policy_version, latest_policy
from models.rating_invitations import RatingInvitation
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget
from tests.support.indicator_data import Rows, cn, rows

L = {5: RatingLevel.VERY_SATISFIED, 4: RatingLevel.SATISFIED, 3: RatingLevel.BASICALLY_SATISFIED,
     2: RatingLevel.DISSATISFIED, 1: RatingLevel.VERY_DISSATISFIED}  # fmt: skip
# Record numbers unique across the several `rows()` blocks of one test.
_NUMBERS = itertools.count(1)
WEIGHTS = {"satisfaction_score": 0.5, "good_rate": 0.3, "on_time_rectification_rate": 0.2}


def by_hand(score: float, good: float, on_time: float | None) -> float:
    """The national formula, written out: 100 × (0.5 × score/5 + 0.3 × good rate + 0.2 × on-time rate or 1)."""
    return round(100 * (0.5 * score / 5 + 0.3 * good + 0.2 * (1.0 if on_time is None else on_time)), 2)


async def small_rules(db: Database) -> None:
    """A new version of the Yantai profile: 3 ratings to be ranked, the bottom 1 for 2 months is a talk."""
    async with db.session() as session:
        pinned = await latest_policy(session, "yantai")
        assert pinned is not None
        ranking = pinned.profile.ranking.model_copy(update={"min_ratings": 3, "talk_bottom": 1, "talk_months": 2})
        await add_policy_version(session, pinned.profile.model_copy(update={"ranking": ranking}), None, "测试")
        await session.commit()


async def ratings_of(r: Rows, unit: int, levels: list[int], at: datetime, **kw: object) -> list[int]:
    """One record and one rating per level, of this unit, at this moment."""
    found = []
    for level in levels:
        record = await r.record(unit, at, staff_id=kw.get("staff_id"), no=f"RANK-{next(_NUMBERS):06d}")  # type: ignore[arg-type]
        target = kw.get("target", RatingTarget.ITEM)
        found.append(await r.rating(record, L[level], at, target=target, adopted=bool(kw.get("adopted", True))))  # type: ignore[arg-type]
    return found


async def units_4_to_6(r: Rows) -> None:
    assert await r.unit("T-JIA", "甲局", parent_id=1) == 4
    assert await r.unit("T-YI", "乙局", parent_id=1) == 5
    assert await r.unit("T-BING", "丙局", parent_id=1) == 6


async def three_months(db: Database) -> int:
    """The table above; the id of unit 2's March case (rectified after its deadline went overdue)."""
    async with rows(db) as r:
        await units_4_to_6(r)
        await ratings_of(r, 2, [5, 5, 5], cn(1, 10))
        await ratings_of(r, 3, [3, 3, 3], cn(1, 10))
        await ratings_of(r, 2, [3, 3, 3], cn(2, 10))
        await ratings_of(r, 3, [5, 5, 5], cn(2, 10))
        *_, bad = await ratings_of(r, 2, [5, 4, 4, 1], cn(3, 10))
        await ratings_of(r, 3, [5, 5, 4], cn(3, 10))
        await ratings_of(r, 3, [1], cn(3, 11), adopted=False)
        await ratings_of(r, 4, [5, 4, 4], cn(3, 10))
        await ratings_of(r, 5, [4, 5, 4], cn(3, 10))
        await ratings_of(r, 6, [5, 5], cn(3, 10))
        case = await r.case(bad, 2, cn(3, 10, 13), stage=Stage.CLOSED, outcome=Outcome.SATISFIED)
        await r.events(
            case,
            ("verified", Stage.RECTIFICATION, cn(3, 11)),
            ("overdue", Stage.RECTIFICATION, cn(3, 15), {"deadline": "rectification_immediate", "rung": 1}),
            ("rectified", Stage.FEEDBACK, cn(3, 16), {"mode": "immediate", "measures": "增开两个窗口"}),
            ("feedback_written", Stage.FEEDBACK, cn(3, 16, 14), {"message": "已增开窗口"}),
            ("closed", Stage.CLOSED, cn(3, 20)),
        )
        return case


async def window_ratings(
    r: Rows, window_code: str, unit: int, levels: list[int], at: datetime, used: bool = True
) -> None:
    """Records rated through a window's code: a used invitation issued by "window:<code>" for each."""
    for level in levels:
        record = await r.record(unit, at, no=f"RANK-{next(_NUMBERS):06d}")
        r.session.add(
            RatingInvitation(
                record_id=record,
                token_hash=f"{window_code}-{record}".ljust(64, "0")[:64],
                issued_by=f"window:{window_code}",
                expires_at=at,
                used_at=at if used else None,
            )  # fmt: skip
        )
        await r.rating(record, L[level], at)


async def closed_case_with_texts(
    db: Database,
    record_no: str,
    *,
    measures: str,
    feedback: str,
    comment: str,
    rater_name: str,
    rater_phone: str,
    rater_email: str | None = None,
) -> int:
    """A closed, on-time March case of unit 3 (a real-name 非常不满意) with these rectification and feedback texts."""
    async with rows(db) as r:
        record = await r.record(3, cn(3, 5), no=record_no)
        rating = Rating(
            record_id=record, level=RatingLevel.VERY_DISSATISFIED, channel=RatingChannel.PC, target=RatingTarget.ITEM,
            comment=comment, real_name=True, rater_name=rater_name, rater_phone=rater_phone, rater_email=rater_email,
            is_bad=True, source_system="demo-hall", submitted_at=cn(3, 5),
        )  # fmt: skip
        r.session.add(rating)
        await r.session.flush()
        assert rating.id is not None
        case = await r.case(rating.id, 3, cn(3, 5, 13), stage=Stage.CLOSED, outcome=Outcome.SATISFIED)
        await r.events(
            case,
            ("verified", Stage.RECTIFICATION, cn(3, 6)),
            ("rectified", Stage.FEEDBACK, cn(3, 7), {"mode": "immediate", "measures": measures}),
            ("feedback_written", Stage.FEEDBACK, cn(3, 7, 14), {"message": feedback}),
            ("closed", Stage.CLOSED, cn(3, 9)),
        )
        return case
