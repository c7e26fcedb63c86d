"""Each reminder and escalation of a case as a row of GB/T 39046-2020 §6.8 表11 电子监察.

One row per timeline event that supervised a case: a deadline's reminder before it falls due
(`reminded`, 预警), each escalation rung after it (`overdue` for rung 1, `escalated` for the rungs
above, 督办), and a supervisor's own reminder (`supervisor_reminded`). Cases started before notices
were written beside their events record a reminder as a `notified` event of kind reminder instead;
it counts too (their escalations already have their own event). 监察预警类型代码 and 监察规则编号
come from policy/codes/national/table11.toml (this system's own codes: the standard gives none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case, CaseEvent
from models.case.vocabulary import DEADLINE_LABELS_ZH, DeadlineView
from models.deadlines import clock_text_zh
from models.national_tables.codes import Table11Codes, WarningType
from models.national_tables.common import ExportFilter, supervision_time, units_by_id
from models.notifications import NoticeStatus, Notification
from models.organisation import Region, Unit
from models.policy import DeadlineName
from models.ratings import Rating
from models.services import ServiceItem, ServiceRecord
from models.upstream_fields import OUTCOME_WORDS

# 表11's eleven items, in the standard's order.
TABLE11_COLUMNS = (
    "办件编号",
    "督办内容",
    "机构名称",
    "事项类型代码",
    "督办发出时间",
    "监察编号",
    "监察规则编号",
    "监察预警类型代码",
    "状态产生时间",
    "监察结果描述",
    "责任部门",
)
# Not in 表11: the code's words, and the case, so a row can be found again in this system.
EXTRA_SUPERVISION_COLUMNS = ("监察预警类型", "督办级别", "工单编号")
COLUMNS = TABLE11_COLUMNS + EXTRA_SUPERVISION_COLUMNS

SUPERVISION_ACTIONS = ("reminded", "overdue", "escalated", "supervisor_reminded")
_LEGACY_NOTICE = "notified"
_NOTIFIED = {"supervisor": "督办单位", "management_office": "政务服务管理机构"}
_DEADLINE_STATE = {
    "running": "时限未届满，办理中",
    "overdue": "已超期，尚未办结",
    "met": "已按期办结该环节",
    "met_late": "已超期办结该环节",
    "cancelled": "该时限已取消",
    "replaced": "已转入台账整改",
}


def is_supervision(event: CaseEvent) -> bool:
    """Whether the event is a 表11 row: a reminder, an escalation rung or a supervisor's reminder."""
    return event.action in SUPERVISION_ACTIONS or (
        event.action == _LEGACY_NOTICE and event.data.get("kind") == "reminder"
    )


@dataclass(frozen=True)
class SupervisionFacts:
    """One supervising event and what its 表11 row is made of."""

    event: CaseEvent
    case: Case
    record_no: str
    item_type: str
    unit_name: str  # the unit handling the case when the event happened (被督办机构, 责任部门)
    notices: list[Notification] = field(default_factory=list)  # the notices written with the event


def warning_of(event: CaseEvent, codes: Table11Codes) -> tuple[WarningType, int]:
    """The event's 监察预警类型 and its number (the reminder's or the rung's)."""
    if event.action in ("overdue", "escalated"):
        rung = int(event.data.get("rung", 1))
        return codes.warning("escalation", rung), rung
    if event.action == "supervisor_reminded":
        return codes.warning("supervisor_reminder"), 1
    return codes.warning("reminder"), int(event.data.get("reminder", 1))


def table11_row(facts: SupervisionFacts, codes: Table11Codes) -> dict[str, str]:
    """One reminder or escalation as 表11 (and the extra columns)."""
    event, case = facts.event, facts.case
    warning, number = warning_of(event, codes)
    deadline = _deadline_name(event)
    sent = [n.sent_at for n in facts.notices if n.status == NoticeStatus.SENT and n.sent_at is not None]
    return {
        "办件编号": facts.record_no,
        "督办内容": _content(facts, warning, number, deadline),
        "机构名称": facts.unit_name,
        "事项类型代码": codes.item_type_code(facts.item_type),
        "督办发出时间": supervision_time(min(sent)) if sent else "",
        "监察编号": f"HCP-{event.id}",
        "监察规则编号": codes.rule_number(deadline.value, warning, number) if deadline else "",
        "监察预警类型代码": warning.code,
        "状态产生时间": supervision_time(event.at),
        "监察结果描述": _result(facts, deadline),
        "责任部门": facts.unit_name,
        "监察预警类型": warning.label,
        "督办级别": str(number) if warning.event == "escalation" else "",
        "工单编号": str(case.id),
    }


def _deadline_name(event: CaseEvent) -> DeadlineName | None:
    try:
        return DeadlineName(str(event.data.get("deadline")))
    except ValueError:
        return None


def _due_of(facts: SupervisionFacts, deadline: DeadlineName) -> datetime | None:
    """The due time the notice was about (its context), else the clock's as the case row has it now."""
    for notice in facts.notices:
        if notice.context.get("due_at"):
            return datetime.fromisoformat(str(notice.context["due_at"]))
    clock = _clock(facts, deadline)
    return clock.due_at if clock else None


def _clock(facts: SupervisionFacts, deadline: DeadlineName) -> DeadlineView | None:
    """The deadline as the case row holds it, when the event belongs to the round the row shows."""
    if facts.event.round != facts.case.round:
        return None
    views = [DeadlineView.model_validate(d) for d in facts.case.deadlines]
    return next((d for d in reversed(views) if d.name == deadline), None)


def _content(facts: SupervisionFacts, warning: WarningType, number: int, deadline: DeadlineName | None) -> str:
    event = facts.event
    if event.action == "supervisor_reminded":
        return f"督办提醒：{event.data.get('message', '')}"
    if deadline is None:  # an old case's reminder names no deadline
        return "办理时限将至，请及时办理"
    label = DEADLINE_LABELS_ZH[deadline]
    due = _due_of(facts, deadline)
    when = f"（{clock_text_zh(due)}）" if due else ""
    if warning.event == "reminder":
        return f"「{label}」时限将至{when}，请及时办理（第{number}次提醒）"
    told = _NOTIFIED.get(str(event.data.get("notify", "")), "督办单位")
    return f"「{label}」时限已届满{when}未办结，第{number}级督办，已通知{told}"


def _result(facts: SupervisionFacts, deadline: DeadlineName | None) -> str:
    """监察结果描述: who was told and whether it went out, then what became of the deadline or the case."""
    notices = facts.notices
    if notices:
        people = len({n.recipient_ref for n in notices})
        counts = [(status, sum(1 for n in notices if n.status == status)) for status in NoticeStatus]
        words = {NoticeStatus.SENT: "已发送", NoticeStatus.PENDING: "待发送", NoticeStatus.SENDING: "发送中",
                 NoticeStatus.FAILED: "发送失败", NoticeStatus.HELD: "暂停待确认"}  # fmt: skip
        told = f"已通知 {people} 人（" + "，".join(f"{words[s]} {n} 条" for s, n in counts if n) + "）"
    elif facts.event.action == _LEGACY_NOTICE:
        told = f"已通知 {len(facts.event.data.get('recipients', []))} 人"
    else:
        told = "无可通知的人员"
    case = facts.case
    if case.closed_at is not None:
        outcome = f"工单已办结（{OUTCOME_WORDS[case.outcome]}）" if case.outcome else "工单已办结"
    elif deadline is not None and (clock := _clock(facts, deadline)) is not None:
        outcome = _DEADLINE_STATE.get(clock.state, clock.state)
    elif facts.event.round != case.round:
        outcome = "该轮已重新交办"
    else:
        outcome = "工单办理中"
    return f"{told}；{outcome}"


def _events_query() -> Any:
    return (
        select(CaseEvent, Case, ServiceRecord.record_no, ServiceItem.item_type)
        .join(Case, col(Case.id) == col(CaseEvent.case_id))
        .join(Rating, col(Rating.id) == col(Case.rating_id))
        .join(ServiceRecord, col(ServiceRecord.id) == col(Rating.record_id))
        .join(ServiceItem, col(ServiceItem.id) == col(ServiceRecord.item_id))
        .join(Unit, col(Unit.id) == col(Case.unit_id))
        .join(Region, col(Region.id) == col(Unit.region_id))
    )


def unit_at(event: CaseEvent, reassignments: Sequence[CaseEvent], now_at: int) -> int:
    """The unit handling the case when the event happened: 改派 events say where it moved from and to."""
    before = [r for r in reassignments if r.id is not None and event.id is not None and r.id < event.id]
    if before:
        return int(before[-1].data["to_unit"])
    return int(reassignments[0].data["from_unit"]) if reassignments else now_at


async def table11_batch(
    session: AsyncSession, flt: ExportFilter, after_id: int, limit: int, codes: Table11Codes
) -> tuple[list[tuple[int, dict[str, str]]], int | None]:
    """Supervising events in [start, end) in scope after an event id, oldest first; and the last id read."""
    query = _events_query().where(
        col(CaseEvent.action).in_((*SUPERVISION_ACTIONS, _LEGACY_NOTICE)),
        col(CaseEvent.at) >= flt.start, col(CaseEvent.at) < flt.end, col(CaseEvent.id) > after_id,
        *flt.case_conditions(),
    )  # fmt: skip
    rows = (await session.exec(query.order_by(col(CaseEvent.id)).limit(limit))).all()
    if not rows:
        return [], None
    last_id = rows[-1][0].id
    rows = [row for row in rows if is_supervision(row[0])]
    case_ids = {row[1].id for row in rows}
    moves: dict[int, list[CaseEvent]] = {case_id: [] for case_id in case_ids}
    for move in (
        await session.exec(
            select(CaseEvent)
            .where(col(CaseEvent.case_id).in_(case_ids), CaseEvent.action == "reassigned")
            .order_by(col(CaseEvent.id))
        )
    ).all():
        moves[move.case_id].append(move)
    keys = {(row[0].case_id, row[0].event_key) for row in rows}
    notices: dict[tuple[int, str], list[Notification]] = {key: [] for key in keys}
    query_notices = select(Notification).where(
        col(Notification.case_id).in_(case_ids), col(Notification.event_key).in_({key for _, key in keys})
    )
    for notice in (await session.exec(query_notices.order_by(col(Notification.id)))).all():
        key = (notice.case_id or 0, notice.event_key)
        if key in notices:
            notices[key].append(notice)
    unit_ids = {unit_at(row[0], moves[row[1].id], row[1].unit_id) for row in rows}
    units = await units_by_id(session, unit_ids)
    built = []
    for event, case, record_no, item_type in rows:
        unit = units.get(unit_at(event, moves[case.id], case.unit_id))
        facts = SupervisionFacts(
            event=event,
            case=case,
            record_no=record_no,
            item_type=item_type,
            unit_name=unit.name if unit else "",
            notices=notices[(event.case_id, event.event_key)],
        )
        built.append((event.id, table11_row(facts, codes)))
    return built, last_id
