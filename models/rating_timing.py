"""When a rating may come (评价时限): the supplementary window (补充评价) and follow-up ratings (追评).

Every number is the unit's pinned profile's `[rating]` section (models/policy.py RatingWindows):

- a first rating is refused once `supplementary` has passed since the record's completion; the
  moment that counts is when the rater rated (an import's 评价时间), else now;
- a follow-up rating needs the rater's own first rating of the same target (a default rating is
  not theirs), at most `follow_up_ratings` of them, each within `follow_up_within` of that rating;
- a bad follow-up opens a case only when its target has none; otherwise it is recorded on that
  case's timeline, read as the rater's satisfaction with the result once the case has reached
  rectification (docs/intake.md, "When a rating may come").

Intake (models/rating_intake.py), the batch and the import (models/bulk_intake.py) and the rater's
pages call these; the invitation and default-rating sweeps (models/unrated_records.py) use the
same clocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.calendar import load_calendar
from models.case.records import Case, CaseEvent
from models.case.vocabulary import Stage
from models.db import utcnow
from models.deadlines import CHINA_TZ, DeadlineSpec, WorkdayCalendar, clock_text_zh, compute_due, rule_text_zh
from models.policy import PinnedPolicy, RatingWindows
from models.ratings import LEVEL_LABELS_ZH, Rating, RatingChannel, RatingTarget, ServiceStage
from models.services import ServiceRecord

if TYPE_CHECKING:
    from models.rating_intake import RatingFields

# The stages in which a case's problem has been rectified or its result given: a follow-up then says
# whether the rater is satisfied with it. Before them the unit is still finding out (kept, shown, no reading).
RESULT_STAGES = frozenset({Stage.RECTIFICATION, Stage.FEEDBACK, Stage.RATER_RESPONSE, Stage.CLOSED})
FOLLOW_UP_ACTION = "follow_up_rated"


class TimingRefused(Exception):
    """A rating refused for its timing or its follow-up number (409): nothing was written."""

    def __init__(self, code: str, message: str, field: str, closes_at: datetime | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.closes_at = closes_at


class Clocks:
    """compute_due on one calendar, remembered per start day: a batch or a sweep asks for the same days often."""

    def __init__(self, calendar: WorkdayCalendar) -> None:
        self.calendar = calendar
        self._working_days: dict[tuple[object, str], datetime] = {}

    def due(self, start: datetime, spec: DeadlineSpec) -> datetime:
        """When a clock of `spec` started at `start` falls due."""
        if spec.unit != "working_days":
            return compute_due(start, spec).at
        # A working-day deadline depends on the start's day only (it ends at a midnight).
        key = (start.astimezone(CHINA_TZ).date(), str(spec))
        if key not in self._working_days:
            self._working_days[key] = compute_due(start, spec, self.calendar).at
        return self._working_days[key]

    def started_before(self, spec: DeadlineSpec, now: datetime) -> datetime:
        """The moment B such that a clock of `spec` has fallen due by `now` exactly when it started before B.

        Due times only grow with the start, so the sweeps can select by completion time in SQL.
        """
        if spec.unit != "working_days":
            return now - spec.as_timedelta() + timedelta(microseconds=1)
        day = now.astimezone(CHINA_TZ).date()
        while self.due(_midnight(day), spec) > now:
            day -= timedelta(days=1)
        return _midnight(day + timedelta(days=1))


def _midnight(day: object) -> datetime:
    return datetime.combine(day, time.min, tzinfo=CHINA_TZ)  # type: ignore[arg-type]


def supplementary_closes_at(completed_at: datetime, rating: RatingWindows, clocks: Clocks) -> datetime:
    """When the record's supplementary window (补充评价) closes: no first rating from then on."""
    return clocks.due(completed_at, rating.supplementary)


def default_due_at(completed_at: datetime, rating: RatingWindows, clocks: Clocks) -> datetime | None:
    """When an unrated record gets its default rating: after `default_after` and once no rater may rate any more."""
    if rating.default_after is None:
        return None
    return max(clocks.due(completed_at, rating.default_after), supplementary_closes_at(completed_at, rating, clocks))


def check_window(record: ServiceRecord, rated_at: datetime, rating: RatingWindows, clocks: Clocks) -> None:
    """Refuse a first rating made once the record's supplementary window had closed."""
    closes_at = supplementary_closes_at(record.completed_at, rating, clocks)
    if rated_at >= closes_at:
        raise TimingRefused(
            "rating_window_closed",
            f"办件 {record.record_no} 已过评价期限：补充评价须在办结后 {rule_text_zh(rating.supplementary)}内"
            f"（至 {clock_text_zh(closes_at)}）作出",
            "record_no",
            closes_at,
        )


def surely_open(record: ServiceRecord, rated_at: datetime, rating: RatingWindows) -> bool:
    """True when no calendar is needed to know the window is open: N working days never end before N days."""
    return rated_at < record.completed_at + timedelta(days=rating.supplementary.amount)


async def judge_timing(
    session: AsyncSession, record: ServiceRecord, ratings: Sequence[RatingFields], pinned: PinnedPolicy
) -> list[RatingFields]:
    """Check each rating's timing; a follow-up (fields.follow_up > 0) comes back with its number. Raises TimingRefused."""
    windows = pinned.profile.rating
    clocks: Clocks | None = None
    judged = []
    for fields in ratings:
        rated_at = fields.submitted_at or utcnow()
        if fields.follow_up == 0 and surely_open(record, rated_at, windows):
            judged.append(fields)
            continue
        clocks = clocks or Clocks(await load_calendar(session))
        if fields.follow_up == 0:
            check_window(record, rated_at, windows, clocks)
            judged.append(fields)
        else:
            number = await follow_up_number(session, record, fields.target, fields.stage, windows, rated_at, clocks)
            judged.append(dataclasses.replace(fields, follow_up=number))
    return judged


async def follow_up_number(
    session: AsyncSession,
    record: ServiceRecord,
    target: RatingTarget,
    stage: ServiceStage,
    windows: RatingWindows,
    rated_at: datetime,
    clocks: Clocks,
) -> int:
    """The number the next follow-up rating of this target gets (1 for the first 追评). Raises TimingRefused."""
    assert record.id is not None
    chain = (
        await session.exec(
            select(Rating.follow_up, Rating.channel, Rating.submitted_at)
            .where(Rating.record_id == record.id, Rating.target == target, Rating.stage == stage)
            .order_by(col(Rating.follow_up))
        )
    ).all()
    what = "事项" if target == RatingTarget.ITEM else "工作人员"
    first = chain[0] if chain and chain[0][0] == 0 else None
    if first is None or first[1] == RatingChannel.SYSTEM_DEFAULT:
        why = "只有默认评价（不是评价人本人的评价）" if first is not None else "尚未评价"
        raise TimingRefused(
            "no_rating_to_follow_up", f"办件 {record.record_no} 的{what}{why}，不能追评；请先作出评价", "follow_up"
        )
    if windows.follow_up_ratings == 0:
        raise TimingRefused("follow_up_not_allowed", "本地区不设追评", "follow_up")
    made = chain[-1][0]
    if made >= windows.follow_up_ratings:
        raise TimingRefused(
            "follow_up_limit_reached",
            f"办件 {record.record_no} 的{what}已追评 {made} 次，最多可追评 {windows.follow_up_ratings} 次",
            "follow_up",
        )
    closes_at = clocks.due(first[2], windows.follow_up_within)
    if rated_at >= closes_at:
        raise TimingRefused(
            "follow_up_window_closed",
            f"办件 {record.record_no} 的追评期限已过：追评须在首次评价后 {rule_text_zh(windows.follow_up_within)}内"
            f"（至 {clock_text_zh(closes_at)}）作出",
            "follow_up",
            closes_at,
        )
    return int(made) + 1


async def follow_up_targets(
    session: AsyncSession, record: ServiceRecord, windows: RatingWindows, now: datetime
) -> list[RatingTarget]:
    """The targets of a record its rater may follow up now (the rater's pages offer exactly these)."""
    if windows.follow_up_ratings == 0:
        return []
    clocks = Clocks(await load_calendar(session))
    open_targets = []
    for target in (RatingTarget.ITEM, RatingTarget.STAFF):
        try:
            await follow_up_number(session, record, target, ServiceStage.WHOLE, windows, now, clocks)
        except TimingRefused:
            continue
        open_targets.append(target)
    return open_targets


async def opens_case(session: AsyncSession, rating: Rating) -> bool:
    """Whether a just-written rating opens a case: a bad first rating does; a follow-up only when its target has none.

    A follow-up on a target with a case is recorded on that case instead (never a second case).
    """
    if rating.follow_up == 0:
        return rating.is_bad
    earlier = (
        select(func.coalesce(Rating.lead_rating_id, Rating.id))
        .where(
            Rating.record_id == rating.record_id,
            Rating.target == rating.target,
            Rating.stage == rating.stage,
            col(Rating.follow_up) < rating.follow_up,
        )
        .scalar_subquery()
    )
    case = (await session.exec(select(Case).where(col(Case.rating_id).in_(earlier)).order_by(col(Case.id)))).first()
    if case is None:
        return rating.is_bad
    _record_on_case(session, case, rating)
    return False


def _record_on_case(session: AsyncSession, case: Case, rating: Rating) -> None:
    """The follow-up on its case's timeline: the rater's satisfaction with the result, or kept while it is handled."""
    assert case.id is not None and rating.id is not None
    about_result = case.stage in RESULT_STAGES
    reading = (
        ("对办理结果满意" if not rating.is_bad else "对办理结果不满意") if about_result else "工单办理中，不另立工单"
    )
    session.add(
        CaseEvent(
            case_id=case.id,
            event_key=f"follow-up-rating-{rating.id}",
            stage=case.stage,
            round=case.round,
            action=FOLLOW_UP_ACTION,
            actor="rater",
            at=rating.submitted_at,
            data={
                "rating_id": rating.id,
                "follow_up": rating.follow_up,
                "level": rating.level.value,
                "bad": rating.is_bad,
                # about: "result" = how satisfied the rater is with the rectification or explanation given;
                # "handling" = said while the unit was still verifying, explaining or appealing.
                "about": "result" if about_result else "handling",
                "satisfied": (not rating.is_bad) if about_result else None,
                "comment": rating.comment,
                "summary": f"追评：{LEVEL_LABELS_ZH[rating.level]}（{reading}）"
                + (f"：{rating.comment}" if rating.comment else ""),
            },
        )
    )


def one_at_a_time(fields: RatingFields) -> TimingRefused | None:
    """A follow-up in a batch or a file is refused: its case depends on the ratings before it, so it comes alone."""
    if not fields.follow_up:
        return None
    return TimingRefused(
        "follow_up_one_at_a_time", "追评请逐条提交（POST /api/v1/ratings，follow_up: true）", "follow_up"
    )


class BulkTiming:
    """The timing checks of a batch or an import chunk, on one calendar loaded only if an item needs it."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._clocks: Clocks | None = None

    async def refusal(
        self, record: ServiceRecord, fields: RatingFields, windows: RatingWindows
    ) -> TimingRefused | None:
        """Why this first rating may not be written: the window had closed when it was made (None: it may)."""
        rated_at = fields.submitted_at or utcnow()
        if surely_open(record, rated_at, windows):
            return None
        self._clocks = self._clocks or Clocks(await load_calendar(self._session))
        try:
            check_window(record, rated_at, windows, self._clocks)
        except TimingRefused as refused:
            return refused
        return None
