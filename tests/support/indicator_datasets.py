"""The hand-counted datasets of the indicator tests, each described by a table the tests count from."""

from __future__ import annotations

from datetime import datetime

from models.case.vocabulary import Outcome, Stage
from models.ratings import RatingChannel, RatingLevel, RatingTarget
from tests.support.indicator_data import RSJ, SCJ, SCJ_STAFF_MEMBER, Rows, cn

VS, S, BS = RatingLevel.VERY_SATISFIED, RatingLevel.SATISFIED, RatingLevel.BASICALLY_SATISFIED
D, VD = RatingLevel.DISSATISFIED, RatingLevel.VERY_DISSATISFIED


async def february(r: Rows) -> None:
    """Ratings and transactions of 市场监管局 (unit 2) around February 2025, China time.

    Record  completed (China)      ratings
    A       02-03 10:00 (staff 1)  a1 非常满意 item pc; a2 满意 staff mobile; a3 追评 of a1
    B       02-04 10:00 (staff 1)  b1 非常不满意 item hall_tablet (bad)
    C       02-09                  c1 基本满意 system_default (a default rating)
    D       02-11                  d1 不满意, not adopted (appeal upheld)
    E       02-15                  —
    F       02-01 07:00 (UTC: 01-31) f1 非常满意 at 02-01 07:30 (UTC: 01-31)
    G       01-31 23:59:59         g1 不满意 at 01-31 23:59:59 (January)
    H       02-28 20:00 (item 2)   h1 满意 at 02-28 23:59:59
    I       02-28 21:00            i1 非常满意 at 03-01 00:00:00 (March; UTC still 02-28)
    J (人社局) 02-06               j1 非常不满意
    """
    a = await r.record(SCJ, cn(2, 3, 10), staff_id=SCJ_STAFF_MEMBER)
    await r.rating(a, VS, cn(2, 3, 11))
    await r.rating(a, S, cn(2, 3, 11, 1), channel=RatingChannel.MOBILE, target=RatingTarget.STAFF)
    await r.rating(a, S, cn(2, 10), follow_up=1)
    b = await r.record(SCJ, cn(2, 4, 10), staff_id=SCJ_STAFF_MEMBER)
    await r.rating(b, VD, cn(2, 5), channel=RatingChannel.HALL_TABLET)
    c = await r.record(SCJ, cn(2, 9))
    await r.rating(c, BS, cn(2, 16), channel=RatingChannel.SYSTEM_DEFAULT)
    d = await r.record(SCJ, cn(2, 11))
    await r.rating(d, D, cn(2, 12), adopted=False)
    await r.record(SCJ, cn(2, 15))
    f = await r.record(SCJ, cn(2, 1, 7))
    await r.rating(f, VS, cn(2, 1, 7, 30))
    g = await r.record(SCJ, cn(1, 31, 23, 59, 59))
    await r.rating(g, D, cn(1, 31, 23, 59, 59))
    h = await r.record(SCJ, cn(2, 28, 20), item_id=2)
    await r.rating(h, S, cn(2, 28, 23, 59, 59))
    i = await r.record(SCJ, cn(2, 28, 21))
    await r.rating(i, VS, cn(3, 1, 0, 0, 0))
    j = await r.record(RSJ, cn(2, 6))
    await r.rating(j, VD, cn(2, 6))


async def cases(r: Rows) -> dict[str, int]:
    """Cases of 市场监管局 opened in February 2025 (and one in January), with their timelines.

    C1 real-name: called back, rectified in time, rater satisfied.   C2 real-name: no callback,
    rectification overdue (rungs 1, 2) then rectified, rater not satisfied; 追评 before and after.
    C3: 无法整改 approved.   C4 open, overdue at rung 1: 无法整改 refused, asked again (pending).
    C5 real-name open at verification, overdue at rung 2.   C6 real-name: appeal upheld (not adopted).
    C7: appeal rejected, back in rectification.   C8: appeal awaiting review.
    C9 real-name: a unit-2 transaction's case reassigned to 人社局.   C10 real-name: opened in January.
    C11: a bundle's case (its rating copied onto a second record).
    """
    ids: dict[str, int] = {}
    stage_r, stage_v = Stage.RECTIFICATION, Stage.VERIFICATION

    async def bad(name: str, opened: datetime, real_name: bool = False, adopted: bool = True) -> int:
        record = await r.record(SCJ, opened, no=f"K-{name}")
        ids[f"r{name}"] = await r.rating(record, VD, opened, real_name=real_name, adopted=adopted)
        ids[f"rec{name}"] = record
        return ids[f"r{name}"]

    c1 = ids["C1"] = await r.case(await bad("1", cn(2, 3), real_name=True), SCJ, cn(2, 3), outcome=Outcome.SATISFIED)
    await r.events(c1, ("accepted", stage_v, cn(2, 3)), ("callback", stage_v, cn(2, 3, 13)),
                   ("verified", stage_r, cn(2, 4)), ("rectified", Stage.FEEDBACK, cn(2, 5)),
                   ("rater_responded", Stage.RATER_RESPONSE, cn(2, 6)), ("closed", Stage.CLOSED, cn(2, 6)))  # fmt: skip
    await r.rating(ids["rec1"], S, cn(2, 9), follow_up=1)  # after rectification: good
    c2 = ids["C2"] = await r.case(await bad("2", cn(2, 4), real_name=True), SCJ, cn(2, 4), outcome=Outcome.UNSATISFIED)
    late = {"deadline": "rectification_immediate"}
    await r.events(c2, ("accepted", stage_v, cn(2, 4)), ("verified", stage_r, cn(2, 5)),
                   ("overdue", stage_r, cn(2, 10), {**late, "rung": 1}), ("escalated", stage_r, cn(2, 11), {**late, "rung": 2}),
                   ("rectified", Stage.FEEDBACK, cn(2, 12)), ("closed", Stage.CLOSED, cn(2, 20)))  # fmt: skip
    await r.rating(ids["rec2"], VD, cn(2, 8), follow_up=1)  # before rectification: not counted there
    await r.rating(ids["rec2"], D, cn(2, 13), follow_up=2)  # after rectification: bad
    c3 = ids["C3"] = await r.case(await bad("3", cn(2, 6)), SCJ, cn(2, 6), outcome=Outcome.CANNOT_RECTIFY)
    await r.events(c3, ("verified", stage_r, cn(2, 7)), ("cannot_rectify_requested", stage_r, cn(2, 8)),
                   ("cannot_rectify_approved", Stage.CLOSED, cn(2, 9)))  # fmt: skip
    c4 = ids["C4"] = await r.case(await bad("4", cn(2, 10)), SCJ, cn(2, 10), stage_r, overdue=True, rung=1)
    await r.events(c4, ("verified", stage_r, cn(2, 11)), ("cannot_rectify_requested", stage_r, cn(2, 12)),
                   ("cannot_rectify_refused", stage_r, cn(2, 13)), ("cannot_rectify_requested", stage_r, cn(2, 14)),
                   ("overdue", stage_r, cn(2, 20), {**late, "rung": 1}))  # fmt: skip
    c5 = ids["C5"] = await r.case(
        await bad("5", cn(2, 12), real_name=True), SCJ, cn(2, 12), stage_v, overdue=True, rung=2
    )
    check = {"deadline": "verification"}
    await r.events(c5, ("accepted", stage_v, cn(2, 12)), ("callback", stage_v, cn(2, 12, 14)),
                   ("overdue", stage_v, cn(2, 15), {**check, "rung": 1}), ("escalated", stage_v, cn(2, 16), {**check, "rung": 2}))  # fmt: skip
    not_adopted = await bad("6", cn(2, 14), real_name=True, adopted=False)
    c6 = ids["C6"] = await r.case(not_adopted, SCJ, cn(2, 14), Stage.NOT_ADOPTED, Outcome.NOT_ADOPTED)
    await r.events(c6, ("accepted", stage_v, cn(2, 14)), ("callback", stage_v, cn(2, 14, 15)),
                   ("verified", Stage.APPEAL_FILING, cn(2, 15)), ("appeal_filed", Stage.APPEAL_REVIEW, cn(2, 16)),
                   ("appeal_upheld", Stage.NOT_ADOPTED, cn(2, 17)))  # fmt: skip
    c7 = ids["C7"] = await r.case(await bad("7", cn(2, 15)), SCJ, cn(2, 15), stage_r)
    await r.events(c7, ("verified", Stage.APPEAL_FILING, cn(2, 16)), ("appeal_filed", Stage.APPEAL_REVIEW, cn(2, 17)),
                   ("appeal_rejected", stage_r, cn(2, 18)))  # fmt: skip
    c8 = ids["C8"] = await r.case(await bad("8", cn(2, 16)), SCJ, cn(2, 16), Stage.APPEAL_REVIEW)
    await r.events(c8, ("verified", Stage.APPEAL_FILING, cn(2, 17)), ("appeal_filed", Stage.APPEAL_REVIEW, cn(2, 18)))
    ids["C9"] = await r.case(await bad("9", cn(2, 17), real_name=True), RSJ, cn(2, 17), Stage.ASSIGNED, round_=2)
    c10 = ids["C10"] = await r.case(await bad("10", cn(1, 31, 23, 30), real_name=True), SCJ, cn(1, 31, 23, 30))
    await r.events(c10, ("callback", stage_v, cn(2, 1)))
    lead = await bad("11", cn(2, 18))
    copy_record = await r.record(SCJ, cn(2, 18), no="K-11-copy")
    ids["r11copy"] = await r.rating(copy_record, VD, cn(2, 18), lead=lead)
    ids["C11"] = await r.case(lead, SCJ, cn(2, 18), Stage.ASSIGNED)
    return ids


async def scoped(r: Rows) -> None:
    """One February rating each in 市场监管局 (2), its new sub-unit (4) and 人社局 (3); unit 4 is 市场监管局's."""
    sub = await r.unit("YT-SCJ-KFQ", "市场监管局开发区分局", parent_id=SCJ)
    assert sub == 4
    for unit, level in ((SCJ, S), (sub, VD), (RSJ, VS)):
        await r.rating(await r.record(unit, cn(2, 10)), level, cn(2, 10))
