"""Each count's SQL: the rows of its family, the filter, the group key, and the count's own condition.

One family is one query: its rows (ratings, service records, cases, follow-up ratings) joined to what
places them (timestamp, unit, region, item, staff, channel, target), the filter as WHERE, the group
key as GROUP BY and every count of the family as `count(*) FILTER (WHERE <condition>)`. A drill-down
list (members.py) selects the same rows with the same WHERE and one count's condition, so a list
holds exactly what its count counted. Runs on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_, select, true
from sqlalchemy.orm import aliased
from sqlmodel import col

from models.case.records import Case, CaseEvent
from models.case.vocabulary import TERMINAL_STAGES, Outcome, Stage
from models.indicators.definitions import COUNTS, LEVEL_COUNT, RUNGS, Dimension, Family
from models.indicators.filters import IndicatorFilter
from models.indicators.periods import china_day, china_month
from models.organisation import Region, Unit
from models.policy import DeadlineName
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ServiceRecord

Condition = ColumnElement[bool]
# A count's condition; the filter and grouping matter to the records family's "rated" test only.
CountCondition = Callable[[IndicatorFilter, Dimension], Condition]

# The rating a case was opened for (a bundle's lead), and its record: what places a case's item and staff.
LEAD = aliased(Rating, name="lead")
LEAD_RECORD = aliased(ServiceRecord, name="lead_record")
# A follow-up (追评), and the first rating it follows (the case's lead or one of its bundle copies).
FOLLOW = aliased(Rating, name="follow")
FIRST = aliased(Rating, name="first_rating")


@dataclass(frozen=True)
class Placing:
    """The columns that place a family's row: in a period, a unit, a region, and the other dimensions."""

    at: Any
    unit: Any
    item: Any
    staff: Any
    channel: Any | None  # none: a transaction has no rating channel
    target: Any | None  # none: the records family applies the target to its "rated" test instead


PLACING = {
    Family.RATINGS: Placing(
        at=Rating.submitted_at,
        unit=ServiceRecord.unit_id,
        item=ServiceRecord.item_id,
        staff=ServiceRecord.staff_id,
        channel=Rating.channel,
        target=Rating.target,
    ),
    Family.RECORDS: Placing(
        at=ServiceRecord.completed_at,
        unit=ServiceRecord.unit_id,
        item=ServiceRecord.item_id,
        staff=ServiceRecord.staff_id,
        channel=None,
        target=None,
    ),
    Family.CASES: Placing(
        at=Case.opened_at,
        unit=Case.unit_id,
        item=col(LEAD_RECORD.item_id),
        staff=col(LEAD_RECORD.staff_id),
        channel=col(LEAD.channel),
        target=col(LEAD.target),
    ),
}
PLACING[Family.FOLLOW_UPS] = PLACING[Family.CASES]


def family_select(family: Family, *columns: Any) -> Any:
    """SELECT columns FROM the family's rows and what places them."""
    query = select(*columns)
    if family == Family.RATINGS:
        return (
            query.select_from(Rating)
            .join(ServiceRecord, col(ServiceRecord.id) == Rating.record_id)
            .join(Unit, col(Unit.id) == ServiceRecord.unit_id)
            .join(Region, col(Region.id) == Unit.region_id)
        )
    if family == Family.RECORDS:
        return query.select_from(ServiceRecord).join(Unit, col(Unit.id) == ServiceRecord.unit_id)
    query = (
        query.select_from(Case)
        .join(LEAD, col(LEAD.id) == Case.rating_id)
        .join(LEAD_RECORD, col(LEAD_RECORD.id) == col(LEAD.record_id))
        .join(Unit, col(Unit.id) == Case.unit_id)
    )
    if family == Family.FOLLOW_UPS:
        # Two OR'd equalities rather than coalesce(), so both sides can use an index (the id, lead_rating_id).
        query = query.join(
            FIRST,
            and_(
                or_(col(FIRST.id) == Case.rating_id, col(FIRST.lead_rating_id) == Case.rating_id),
                col(FIRST.follow_up) == 0,
            ),
        ).join(
            FOLLOW,
            and_(
                col(FOLLOW.record_id) == col(FIRST.record_id),
                col(FOLLOW.target) == col(FIRST.target),
                col(FOLLOW.stage) == col(FIRST.stage),
                col(FOLLOW.follow_up) > 0,
            ),
        )
    return query


def filter_conditions(family: Family, flt: IndicatorFilter, dimension: Dimension) -> list[Condition]:
    """The WHERE of a family's rows under a filter (and a staff grouping, which keeps staff ratings only)."""
    place = PLACING[family]
    start, end = flt.period.bounds
    found: list[Condition] = [place.at >= start, place.at < end]
    if flt.units is not None:
        found.append(place.unit.in_(sorted(flt.units)))
    if flt.region_id is not None:
        found.append(col(Unit.region_id) == flt.region_id)
    if flt.item_id is not None:
        found.append(place.item == flt.item_id)
    if flt.staff_id is not None:
        found.append(place.staff == flt.staff_id)
    elif dimension == Dimension.STAFF:
        found.append(place.staff.is_not(None))
    target = flt.rating_target(dimension)
    if target is not None:
        found.append(place.target == target if place.target is not None else _record_can_have(target))
    if flt.channel is not None and place.channel is not None:
        found.append(place.channel == flt.channel)
    return found


def group_key(family: Family, dimension: Dimension) -> Any | None:
    """The GROUP BY expression of a dimension in a family; None for no grouping."""
    place = PLACING[family]
    keys: dict[Dimension, Any] = {
        Dimension.REGION: Unit.region_id,
        Dimension.UNIT: place.unit,
        Dimension.SUBUNIT: place.unit,  # folded into subtrees afterwards (counts add up)
        Dimension.STAFF: place.staff,
        Dimension.ITEM: place.item,
        Dimension.CHANNEL: place.channel,
        Dimension.DAY: china_day(place.at),
        Dimension.MONTH: china_month(place.at),
    }
    return keys.get(dimension)


def _record_can_have(target: RatingTarget) -> Condition:
    """A record can be rated on its staff member only when it has one (a window transaction)."""
    return col(ServiceRecord.staff_id).is_not(None) if target == RatingTarget.STAFF else true()


def _fixed(condition: Condition) -> CountCondition:
    """A condition that is the same whatever the filter."""
    return lambda _flt, _dimension: condition


# --- ratings: rows are ratings ---
_FIRST = col(Rating.follow_up) == 0
_RATED = and_(_FIRST, col(Rating.adopted))
_DEFAULT = col(Rating.channel) == RatingChannel.SYSTEM_DEFAULT


def _rating_conditions() -> dict[str, CountCondition]:
    found: dict[str, CountCondition] = {
        "ratings": lambda f, d: _RATED,
        "active_ratings": lambda f, d: and_(_RATED, not_(_DEFAULT)),
        "default_ratings": lambda f, d: and_(_RATED, _DEFAULT),
        "good_ratings": lambda f, d: and_(_RATED, not_(col(Rating.is_bad))),
        "bad_ratings": lambda f, d: and_(_RATED, col(Rating.is_bad)),
        "follow_ups": lambda f, d: and_(col(Rating.follow_up) > 0, col(Rating.adopted)),
        "not_adopted_ratings": lambda f, d: and_(_FIRST, not_(col(Rating.adopted))),
    }
    for level in RatingLevel:
        found[LEVEL_COUNT[level]] = _fixed(and_(_RATED, col(Rating.level) == level))
    return found


# --- records: rows are completed transactions ---
def _rated(flt: IndicatorFilter, dimension: Dimension, active_only: bool = False) -> Condition:
    rating = aliased(Rating, name="record_rating")
    conditions = [col(rating.record_id) == ServiceRecord.id, col(rating.adopted), col(rating.follow_up) == 0]
    if (target := flt.rating_target(dimension)) is not None:
        conditions.append(col(rating.target) == target)
    if active_only:
        conditions.append(col(rating.channel) != RatingChannel.SYSTEM_DEFAULT)
    return select(col(rating.id)).where(*conditions).exists()


_RECORD_CONDITIONS: dict[str, CountCondition] = {
    "completed_records": lambda f, d: true(),
    "rated_records": lambda f, d: _rated(f, d),
    "actively_rated_records": lambda f, d: _rated(f, d, active_only=True),
    "default_rated_records": lambda f, d: and_(_rated(f, d), not_(_rated(f, d, active_only=True))),
    "unrated_records": lambda f, d: not_(_rated(f, d)),
}


# --- cases: rows are cases, with their lead rating ---
def _event(*actions: str, extra: list[Condition] | None = None) -> Condition:
    """The case has a timeline event of one of these actions."""
    return (
        select(col(CaseEvent.id))
        .where(col(CaseEvent.case_id) == Case.id, col(CaseEvent.action).in_(actions), *(extra or []))
        .exists()
    )


_ADOPTED = col(LEAD.adopted).is_(True)
_OVERDUE_ACTIONS = ("overdue", "escalated")  # rung 1, and each rung after it (data: deadline, rung)
_RECTIFICATION_CLOCKS = (DeadlineName.RECTIFICATION_IMMEDIATE.value, DeadlineName.RECTIFICATION_LEDGER_MAX.value)
_RATER_CLOSED = (Outcome.SATISFIED, Outcome.SATISFIED_BY_SILENCE, Outcome.UNSATISFIED)


def _to_rectify() -> Condition:
    entered = (
        select(col(CaseEvent.id))
        .where(col(CaseEvent.case_id) == Case.id, col(CaseEvent.stage) == Stage.RECTIFICATION)
        .exists()
    )
    not_cannot = or_(col(Case.outcome).is_(None), col(Case.outcome) != Outcome.CANNOT_RECTIFY)
    return and_(_ADOPTED, entered, not_cannot)


def _rectified() -> Condition:
    return and_(_to_rectify(), _event("rectified"))


def _rectification_late() -> Condition:
    return _event(*_OVERDUE_ACTIONS, extra=[col(CaseEvent.data)["deadline"].as_string().in_(_RECTIFICATION_CLOCKS)])


def _cannot_rectify_pending() -> Condition:
    """A request of the case's current round with no decision after it (a new round drops a pending request).

    Some such request exists exactly when the case's last request of this round came after its last
    decision: compared as two per-case maxima, which PostgreSQL evaluates case by case through the
    case_id index. Written as NOT EXISTS inside EXISTS it was planned as one anti-join of every
    request with every decision in the table, whatever the period (0.6 s for a day's cases at 10
    million ratings, growing with the square of the requests).
    """
    last_request = (
        select(func.max(col(CaseEvent.id)))
        .where(
            col(CaseEvent.case_id) == Case.id,
            col(CaseEvent.action) == "cannot_rectify_requested",
            col(CaseEvent.round) == Case.round,
        )
        .scalar_subquery()
    )
    last_decision = (
        select(func.max(col(CaseEvent.id)))
        .where(
            col(CaseEvent.case_id) == Case.id,
            col(CaseEvent.action).in_(("cannot_rectify_approved", "cannot_rectify_refused")),
        )
        .scalar_subquery()
    )
    return and_(_ADOPTED, col(Case.stage) == Stage.RECTIFICATION, last_request > func.coalesce(last_decision, 0))


def _overdue_open() -> Condition:
    return and_(_ADOPTED, col(Case.stage).not_in(TERMINAL_STAGES), col(Case.overdue))


def _reached(rung: int) -> Condition:
    return and_(_ADOPTED, _event(*_OVERDUE_ACTIONS, extra=[col(CaseEvent.data)["rung"].as_integer() >= rung]))


def _case_conditions() -> dict[str, CountCondition]:
    found: dict[str, CountCondition] = {
        "cases": lambda f, d: _ADOPTED,
        "real_name_cases": lambda f, d: and_(_ADOPTED, col(LEAD.real_name).is_(True)),
        "called_back_cases": lambda f, d: and_(_ADOPTED, col(LEAD.real_name).is_(True), _event("callback")),
        "rectification_cases": lambda f, d: _to_rectify(),
        "rectified_cases": lambda f, d: _rectified(),
        "rectified_on_time_cases": lambda f, d: and_(_rectified(), not_(_rectification_late())),
        "rater_answered_cases": lambda f, d: and_(_rectified(), col(Case.outcome).in_(_RATER_CLOSED)),
        "rater_satisfied_cases": lambda f, d: and_(
            _rectified(), col(Case.outcome).in_((Outcome.SATISFIED, Outcome.SATISFIED_BY_SILENCE))
        ),
        "cannot_rectify_requested_cases": lambda f, d: and_(_ADOPTED, _event("cannot_rectify_requested")),
        "cannot_rectify_approved_cases": lambda f, d: and_(_ADOPTED, _event("cannot_rectify_approved")),
        "cannot_rectify_refused_cases": lambda f, d: and_(_ADOPTED, _event("cannot_rectify_refused")),
        "cannot_rectify_pending_cases": lambda f, d: _cannot_rectify_pending(),
        "overdue_open_cases": lambda f, d: _overdue_open(),
        "appealed_cases": lambda f, d: _event("appeal_filed"),
        "appeal_decided_cases": lambda f, d: _event("appeal_upheld", "appeal_rejected"),
        "appeal_upheld_cases": lambda f, d: _event("appeal_upheld"),
        "appeal_rejected_cases": lambda f, d: _event("appeal_rejected"),
        "appeal_pending_cases": lambda f, d: col(Case.stage) == Stage.APPEAL_REVIEW,
    }
    for rung in RUNGS:
        found[f"overdue_open_cases_rung_{rung}"] = _fixed(and_(_overdue_open(), col(Case.escalation_rung) == rung))
        found[f"escalated_cases_rung_{rung}"] = _fixed(_reached(rung))
    return found


# --- follow-ups: rows are follow-up ratings of a case's record, target and stage ---
def _after_rectification() -> Condition:
    rectified_before = _event("rectified", extra=[col(CaseEvent.at) <= col(FOLLOW.submitted_at)])
    return and_(_ADOPTED, col(FOLLOW.adopted).is_(True), rectified_before)


_FOLLOW_UP_CONDITIONS: dict[str, CountCondition] = {
    "follow_ups_after_rectification": lambda f, d: _after_rectification(),
    "good_follow_ups_after_rectification": lambda f, d: and_(_after_rectification(), col(FOLLOW.is_bad).is_(False)),
}

# Counts that are one count less another (each set inside the other), computed so rather than by a second
# pair of EXISTS per row; their conditions above still select their lists (the drill-down test checks both agree).
DIFFERENCES: dict[str, tuple[str, str]] = {
    "default_rated_records": ("rated_records", "actively_rated_records"),
    "unrated_records": ("completed_records", "rated_records"),
}

CONDITIONS: dict[str, CountCondition] = {
    **_rating_conditions(),
    **_RECORD_CONDITIONS,
    **_case_conditions(),
    **_FOLLOW_UP_CONDITIONS,
}
# Every count of definitions.py has its condition here, and nothing else does: checked when imported.
if set(CONDITIONS) != {count.name for count in COUNTS}:
    raise RuntimeError(f"count conditions and definitions disagree: {set(CONDITIONS) ^ {c.name for c in COUNTS}}")
