"""A case as a row of GB/T 39046-2020 §6.7 表10: the complaint items (投诉, items 13–30) of 办事互动.

A bad review is the nearest thing this system has to a complaint: the rater complains about a
transaction, a unit handles it (承办), tells the rater the result (反馈) within deadlines. One row per
case, with 办件编号 first (表10 has no place for it; without it a row cannot be joined to the rating's
表9 row) and, after the standard's items, a few of the case's own (工单编号 …). The only person named
is 承办人, the staff member who took the case (签收); never the rater (投诉人 says 实名评价人 or 匿名).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.calendar import load_calendar
from models.case.records import Case, CaseEvent
from models.case.vocabulary import STAGE_LABELS_ZH, DeadlineView
from models.deadlines import WorkdayCalendar
from models.national_tables.common import (
    ExportFilter,
    actor_user_id,
    events_of,
    last_event,
    platform_time,
    units_by_id,
    user_names,
)
from models.national_tables.deadlines import deadline_terms, overdue_days, reported_deadline
from models.organisation import Region, Staff, Unit
from models.policy import PolicyProfile
from models.policy_store import policy_version
from models.ratings import LEVEL_LABELS_ZH, Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ServiceItem, ServiceRecord
from models.upstream_fields import ANONYMOUS_RATER, CHANNEL_WORDS, OUTCOME_WORDS, UNNAMED_RATER

# 表10 items 13–30 in the standard's order, after 办件编号.
TABLE10_COLUMNS = (
    "办件编号",
    "投诉标题",
    "投诉人",
    "被投诉单位",
    "被投诉人",
    "投诉内容",
    "投诉来源",
    "投诉时间",
    "承办单位代码",
    "承办单位名称",
    "承办人",
    "承办时间",
    "反馈信息",
    "反馈时间",
    "承诺时限",
    "延期时限",
    "延期原因",
    "超期天数",
    "行政区划",
)
# Not in 表10: the case itself, so a row can be found again in this system.
EXTRA_CASE_COLUMNS = ("工单编号", "办理阶段", "办理结果", "办结时间", "督办升级级别")
COLUMNS = TABLE10_COLUMNS + EXTRA_CASE_COLUMNS
_RUNGS = ("overdue", "escalated")  # 督办升级级别: the highest rung the case ever reached, in any round


@dataclass(frozen=True)
class RatingFacts:
    """What 表10 uses of the rating: no name, phone or email is ever read for it."""

    level: RatingLevel
    channel: RatingChannel
    target: RatingTarget
    comment: str
    real_name: bool
    submitted_at: datetime


@dataclass(frozen=True)
class CaseFacts:
    """One case and everything its 表10 row is made of."""

    case: Case
    rating: RatingFacts
    record_no: str
    item_name: str
    complained_unit: str  # the unit of the transaction (被投诉单位); the case may since have been reassigned
    staff_no: str | None  # 工号 of the staff member rated, for a staff rating
    unit: Unit  # the unit handling the case now
    region_code: str
    events: list[CaseEvent]  # the whole timeline, oldest first
    handler_names: dict[int, str]
    profile: PolicyProfile | None  # the pinned version, to say what an extended deadline first was


def table10_row(facts: CaseFacts, now: datetime, calendar: WorkdayCalendar) -> dict[str, str]:
    """One case as 表10 (and the extra columns); `now` ends the overrun of a deadline still past due."""
    case, rating, events = facts.case, facts.rating, facts.events
    accepted = last_event(events, "accepted")
    handler = facts.handler_names.get(actor_user_id(accepted.actor) or 0, "") if accepted else ""
    feedback = last_event(events, "feedback_written")
    this_round = [e for e in events if e.round == case.round]
    deadlines = [DeadlineView.model_validate(d) for d in case.deadlines]
    shown = reported_deadline(deadlines)
    terms = deadline_terms(shown, this_round, facts.profile, calendar) if shown else None
    return {
        "办件编号": facts.record_no,
        "投诉标题": f"对「{facts.item_name}」的差评（{LEVEL_LABELS_ZH[rating.level]}）",
        "投诉人": (UNNAMED_RATER if rating.real_name else ANONYMOUS_RATER),
        "被投诉单位": facts.complained_unit,
        "被投诉人": (facts.staff_no or "") if rating.target == RatingTarget.STAFF else "",
        "投诉内容": rating.comment,
        "投诉来源": f"好差评（{CHANNEL_WORDS[rating.channel]}）",
        "投诉时间": platform_time(rating.submitted_at),
        "承办单位代码": facts.unit.code,
        "承办单位名称": facts.unit.name,
        "承办人": handler,
        "承办时间": platform_time(accepted.at) if accepted else "",
        "反馈信息": str(feedback.data.get("message", "")) if feedback else "",
        "反馈时间": platform_time(feedback.at) if feedback else "",
        "承诺时限": platform_time(terms.promised) if terms else "",
        "延期时限": platform_time(terms.extended_to) if terms else "",
        "延期原因": "；".join(terms.reasons) if terms else "",
        "超期天数": str(overdue_days(deadlines, this_round, now, calendar)),
        "行政区划": facts.region_code,
        "工单编号": str(case.id),
        "办理阶段": STAGE_LABELS_ZH[case.stage],
        "办理结果": OUTCOME_WORDS[case.outcome] if case.outcome else "",
        "办结时间": platform_time(case.closed_at),
        "督办升级级别": str(max((int(e.data.get("rung", 0)) for e in events if e.action in _RUNGS), default=0)),
    }


def _cases_query() -> Any:
    # sqlmodel's select() is typed for at most four entities; at run time it takes any number.
    return (
        select(  # type: ignore[call-overload]
            Case,
            Rating.level,
            Rating.channel,
            Rating.target,
            Rating.comment,
            Rating.real_name,
            Rating.submitted_at,
            ServiceRecord.record_no,
            ServiceRecord.unit_id,
            ServiceRecord.staff_id,
            ServiceItem.name,
            Unit,
            Region.code,
        )
        .join(Rating, col(Rating.id) == col(Case.rating_id))
        .join(ServiceRecord, col(ServiceRecord.id) == col(Rating.record_id))
        .join(ServiceItem, col(ServiceItem.id) == col(ServiceRecord.item_id))
        .join(Unit, col(Unit.id) == col(Case.unit_id))
        .join(Region, col(Region.id) == col(Unit.region_id))
    )


async def table10_batch(
    session: AsyncSession, flt: ExportFilter, after_id: int, limit: int, now: datetime
) -> list[tuple[int, dict[str, str]]]:
    """Cases opened in [start, end) in the filter's scope, after a case id, oldest id first: (id, row) each."""
    query = _cases_query().where(
        col(Case.opened_at) >= flt.start, col(Case.opened_at) < flt.end, col(Case.id) > after_id,
        *flt.case_conditions(),
    )  # fmt: skip
    rows = (await session.exec(query.order_by(col(Case.id)).limit(limit))).all()
    if not rows:
        return []
    events = await events_of(session, [row[0].id for row in rows])
    handlers = {actor_user_id(e.actor) for found in events.values() for e in found if e.action == "accepted"}
    names = await user_names(session, {h for h in handlers if h is not None})
    complained = await units_by_id(session, {row[8] for row in rows})
    staff_ids = {row[9] for row in rows if row[9] is not None}
    staff_nos = dict((await session.exec(select(Staff.id, Staff.staff_no).where(col(Staff.id).in_(staff_ids)))).all())
    calendar = await load_calendar(session)
    profiles: dict[tuple[str, int], PolicyProfile | None] = {}
    built = []
    for case, level, channel, target, comment, real_name, submitted_at, record_no, record_unit, staff_id, item, unit, region in rows:  # fmt: skip
        assert case.id is not None
        key = (case.policy_code, case.policy_version)
        if key not in profiles:
            pinned = await policy_version(session, *key)
            profiles[key] = pinned.profile if pinned else None
        facts = CaseFacts(
            case=case,
            rating=RatingFacts(level, channel, target, comment, real_name, submitted_at),
            record_no=record_no,
            item_name=item,
            complained_unit=complained[record_unit].name if record_unit in complained else "",
            staff_no=staff_nos.get(staff_id) if staff_id is not None else None,
            unit=unit,
            region_code=region,
            events=events[case.id],
            handler_names=names,
            profile=profiles[key],
        )
        built.append((case.id, table10_row(facts, now, calendar)))
    return built
