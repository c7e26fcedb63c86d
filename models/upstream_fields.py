"""What the upstream platform gets, in its own fields: GB/T 39046-2020 表9 for a rating, and a case's result.

Both the push (activities/upstream_sender.py) and the CSV export (api/rating_export.py,
runtime/export_ratings.py) build their rows here, so the platform sees the same words either way.
评价人 is never the rater's phone or email: see `rater_label` and docs/upstream.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case, CaseEvent
from models.case.vocabulary import Outcome, Verdict
from models.deadlines import CHINA_TZ
from models.organisation import Region, Unit
from models.privacy import mask_name
from models.ratings import LEVEL_LABELS_ZH, SERVICE_STAGE_LABELS_ZH, Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ServiceRecord

LevelCodes = Literal["gbt39046", "ascending"]

# The nine data items of GB/T 39046-2020 §6.6 表9, in the standard's order.
TABLE9_COLUMNS = (
    "办件编号",
    "评价渠道",
    "评价人",
    "评价时间",
    "评价次数",
    "满意度",
    "满意度代码",
    "文字评价",
    "行政区划",
)
# Not in 表9, which has no place for either: a window transaction has two ratings (item and staff member), and a
# source that rates stages one per stage (受理/办理/办结), that 表9 alone cannot tell apart.
EXTRA_RATING_COLUMNS = ("评价对象", "评价环节")

# 表9 评价渠道 is text, in the standard's words.
CHANNEL_WORDS = {
    RatingChannel.PC: "PC端",
    RatingChannel.MOBILE: "移动服务端",
    RatingChannel.QR_CODE: "二维码",
    RatingChannel.HALL_TABLET: "政务大厅平板电脑",
    RatingChannel.HALL_TERMINAL: "政务大厅其他终端",
    RatingChannel.PHONE: "电话",
    RatingChannel.SMS: "短信",
    RatingChannel.SYSTEM_DEFAULT: "系统默认评价",
}
# 附录 A.8: 1 非常满意 … 5 非常不满意. Some provincial platforms count the other way (1 非常不满意 … 5 非常满意).
_GBT_LEVEL_CODES = {level: str(n) for n, level in enumerate(RatingLevel, start=1)}
TARGET_WORDS = {RatingTarget.ITEM: "事项", RatingTarget.STAFF: "工作人员"}
ANONYMOUS_RATER = "匿名"
UNNAMED_RATER = "实名评价人"

VERDICT_WORDS = {Verdict.VALID: "属实", Verdict.NO_LEGAL_BASIS: "无政策依据", Verdict.DISPUTED: "误评或恶意差评"}
OUTCOME_WORDS = {
    Outcome.SATISFIED: "评价人满意",
    Outcome.SATISFIED_BY_SILENCE: "评价人逾期未答复，视为满意",
    Outcome.UNSATISFIED: "评价人仍不满意",
    Outcome.NO_CONTACT: "匿名评价，无法反馈",
    Outcome.NOT_ADOPTED: "不予采纳",
    Outcome.CANNOT_RECTIFY: "无法整改",
}


def platform_time(moment: datetime | None) -> str:
    """表9 评价时间 and every other moment: YYYYMMDDThhmmss, China time."""
    return moment.astimezone(CHINA_TZ).strftime("%Y%m%dT%H%M%S") if moment else ""


def level_code(level: RatingLevel, codes: LevelCodes = "gbt39046") -> str:
    code = _GBT_LEVEL_CODES[level]
    return code if codes == "gbt39046" else str(6 - int(code))


def rater_label(rating: Rating) -> str:
    """表9 评价人 as this system reports it: the masked name of a named real-name rater, never contact details.

    The platform counts and publishes ratings; who the rater is stays with the people handling the
    case (国办发〔2019〕51号: protect the rater's information). So a real-name rating with a name
    says 张** (as staff pages show it), one without a name 实名评价人, an anonymous one 匿名.
    """
    if not rating.real_name:
        return ANONYMOUS_RATER
    return mask_name(rating.rater_name) or UNNAMED_RATER


def table9_row(rating: Rating, record_no: str, region_code: str, codes: LevelCodes = "gbt39046") -> dict[str, str]:
    """One rating as GB/T 39046-2020 表9 (and the target and the stage, outside 表9)."""
    return {
        "办件编号": record_no,
        "评价渠道": CHANNEL_WORDS[rating.channel],
        "评价人": rater_label(rating),
        "评价时间": platform_time(rating.submitted_at),
        "评价次数": str(rating.follow_up + 1),  # 1 首次评价, 2 the first 追评 …
        "满意度": LEVEL_LABELS_ZH[rating.level],
        "满意度代码": level_code(rating.level, codes),
        "文字评价": rating.comment,
        "行政区划": region_code,
        "评价对象": TARGET_WORDS[rating.target],
        "评价环节": SERVICE_STAGE_LABELS_ZH[rating.stage],
    }


def _ratings_with_places() -> Any:
    return (
        select(Rating, ServiceRecord.record_no, Region.code)
        .join(ServiceRecord, col(Rating.record_id) == col(ServiceRecord.id))
        .join(Unit, col(ServiceRecord.unit_id) == col(Unit.id))
        .join(Region, col(Unit.region_id) == col(Region.id))
    )


async def rating_fields(session: AsyncSession, rating_id: int, codes: LevelCodes) -> dict[str, str] | None:
    """The 表9 fields of one rating; None if it no longer exists."""
    found = (await session.exec(_ratings_with_places().where(col(Rating.id) == rating_id))).first()
    if found is None:
        return None
    rating, record_no, region_code = found
    return table9_row(rating, record_no, region_code, codes)


async def table9_batch(
    session: AsyncSession, start: datetime, end: datetime, after_id: int, limit: int
) -> list[tuple[int, dict[str, str]]]:
    """Ratings submitted in [start, end), after a rating id, oldest id first: (id, 表9 row) each."""
    rows = await session.exec(
        _ratings_with_places()
        .where(col(Rating.submitted_at) >= start, col(Rating.submitted_at) < end, col(Rating.id) > after_id)
        .order_by(col(Rating.id))
        .limit(limit)
    )
    found = []
    for rating, record_no, region_code in rows.all():
        assert rating.id is not None
        found.append((rating.id, table9_row(rating, record_no, region_code)))
    return found


def _last(events: Sequence[CaseEvent], action: str) -> CaseEvent | None:
    return next((event for event in reversed(events) if event.action == action), None)


def _rectification_result(case: Case, events: Sequence[CaseEvent]) -> str:
    if case.outcome == Outcome.NOT_ADOPTED:
        return "不予采纳"
    if case.outcome == Outcome.CANNOT_RECTIFY:
        return "无法整改"
    if _last(events, "rectified") is not None:
        return "已整改"
    if _last(events, "explained") is not None:
        return "已解释说明"
    return ""


async def case_result_fields(session: AsyncSession, case_id: int, rating_push_key: str) -> dict[str, str] | None:
    """A finished case's result (核实, 整改, 反馈, 办理结果) in the platform's words; None if the case is gone."""
    case = await session.get(Case, case_id)
    if case is None:
        return None
    rating = await session.get(Rating, case.rating_id)
    unit = await session.get(Unit, case.unit_id)
    assert rating is not None and unit is not None
    record = await session.get(ServiceRecord, rating.record_id)
    region = await session.get(Region, unit.region_id)
    assert record is not None and region is not None
    events = (
        await session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.id)))
    ).all()
    rectified, explained = _last(events, "rectified"), _last(events, "explained")
    feedback = _last(events, "feedback_written")
    cannot = _last(events, "cannot_rectify_approved")
    upheld = _last(events, "appeal_upheld")
    explanation = explained or cannot or upheld
    explanation_key = {"explained": "explanation", "cannot_rectify_approved": "explanation", "appeal_upheld": "reason"}
    return {
        "办件编号": record.record_no,
        "评价推送编号": rating_push_key,
        "评价时间": platform_time(rating.submitted_at),
        "行政区划": region.code,
        "承办单位代码": unit.code,
        "承办单位名称": unit.name,
        "核实结论": VERDICT_WORDS[case.verdict] if case.verdict else "",
        "整改结果": _rectification_result(case, events),
        "整改措施": str(rectified.data.get("measures", "")) if rectified else "",
        "解释说明": str(explanation.data.get(explanation_key[explanation.action], "")) if explanation else "",
        "反馈信息": str(feedback.data.get("message", "")) if feedback else "",
        "反馈时间": platform_time(feedback.at) if feedback else "",
        "办理结果": OUTCOME_WORDS[case.outcome] if case.outcome else "",
        "办理结果代码": case.outcome.value if case.outcome else "",
        "办结时间": platform_time(case.closed_at),
        "重新交办次数": str(case.round - 1),
        "督办升级级别": str(case.escalation_rung),
        "差评是否采纳": "是" if rating.adopted else "否",
    }
