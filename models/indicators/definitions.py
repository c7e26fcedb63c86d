"""The statistics (统计指标) as data: every count and every indicator, with its Chinese name and formula.

Counts are integers computed by SQL (models/indicators/counting.py holds each count's condition under
the same name); indicators are ratios of two counts, derived by pure functions (derive.py), so a
rollup table of counts feeds the same functions. docs/indicators.md explains each one.

Pure: no SQL, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from models.ratings import RatingLevel


class Family(StrEnum):
    """What a count counts, and so which timestamp places it in a period and which unit it belongs to."""

    RATINGS = "ratings"  # ratings, by submitted_at, the record's unit
    RECORDS = "records"  # completed transactions (办件), by completed_at, the record's unit
    CASES = "cases"  # bad-review cases (差评工单), by opened_at, the unit the case stands at
    FOLLOW_UPS = "follow_ups"  # 追评 on a rectified case's rating, placed and owned as their case


class Members(StrEnum):
    """The list endpoint that shows what is behind a count (drill-down)."""

    RATINGS = "ratings"  # GET /api/v1/ratings: ratings (a case count lists its cases' ratings, with the case)
    RECORDS = "service_records"  # GET /api/v1/service-records


MEMBER_PATHS = {Members.RATINGS: "/api/v1/ratings", Members.RECORDS: "/api/v1/service-records"}


class Dimension(StrEnum):
    """What a report is grouped by (group_by)."""

    NONE = "none"
    REGION = "region"  # 行政区划: the unit's region
    UNIT = "unit"  # 单位: each unit's own figures (the rows add up to the total)
    SUBUNIT = "subunit"  # 下级单位: each unit below the scope's root with its whole subtree, and the root's own
    STAFF = "staff"  # 工作人员: staff ratings only
    ITEM = "item"  # 事项
    CHANNEL = "channel"  # 评价渠道
    DAY = "day"  # 日 (China time)
    MONTH = "month"  # 月 (China time)


DIMENSION_LABELS_ZH = {
    Dimension.NONE: "合计",
    Dimension.REGION: "行政区划",
    Dimension.UNIT: "单位（本级）",
    Dimension.SUBUNIT: "下级单位（含其下级）",
    Dimension.STAFF: "工作人员",
    Dimension.ITEM: "事项",
    Dimension.CHANNEL: "评价渠道",
    Dimension.DAY: "日",
    Dimension.MONTH: "月",
}


@dataclass(frozen=True)
class CountDef:
    name: str
    label: str  # 中文名
    family: Family
    formula: str  # what is counted, in English, as docs/indicators.md says it

    @property
    def members(self) -> Members:
        return Members.RECORDS if self.family == Family.RECORDS else Members.RATINGS


@dataclass(frozen=True)
class IndicatorDef:
    name: str
    label: str  # 中文名
    kind: Literal["rate", "average"]
    numerator: str  # a count's name; "score_sum" for the satisfaction score (Σ count × the profile's score)
    denominator: str  # a count's name
    formula: str


R, T, C, F = Family.RATINGS, Family.RECORDS, Family.CASES, Family.FOLLOW_UPS
# Escalation ladders have at most five rungs (models/policy.py: EscalationRung.rung ≤ 5).
RUNGS = range(1, 6)

LEVEL_COUNT = {level: f"level_{level.value}" for level in RatingLevel}
_LEVEL_ZH = {
    RatingLevel.VERY_SATISFIED: "非常满意",
    RatingLevel.SATISFIED: "满意",
    RatingLevel.BASICALLY_SATISFIED: "基本满意",
    RatingLevel.DISSATISFIED: "不满意",
    RatingLevel.VERY_DISSATISFIED: "非常不满意",
}

COUNTS: tuple[CountDef, ...] = (
    # --- ratings: first ratings (follow_up = 0) that are adopted, bundle copies each on its own record ---
    CountDef("ratings", "评价数", R, "adopted first ratings (follow_up = 0), default ratings included"),
    CountDef("active_ratings", "主动评价数", R, "ratings whose channel is not system_default"),
    CountDef("default_ratings", "系统默认评价数", R, "ratings whose channel is system_default"),
    CountDef("good_ratings", "好评数", R, "ratings that are not bad reviews (is_bad false, per the profile at intake)"),
    CountDef("bad_ratings", "差评数", R, "ratings that are bad reviews (is_bad true)"),
    *(CountDef(LEVEL_COUNT[lv], f"{_LEVEL_ZH[lv]}数", R, f"ratings at level {lv.value}") for lv in RatingLevel),
    CountDef("follow_ups", "追评数", R, "adopted follow-up ratings (follow_up > 0): not ratings of the transaction"),
    CountDef("not_adopted_ratings", "不予采纳评价数", R, "first ratings taken out by an upheld appeal (shown only)"),
    # --- completed transactions (办件) ---
    CountDef("completed_records", "办结办件数", T, "service records completed in the period"),
    CountDef("rated_records", "已评价办件数", T, "completed records with an adopted first rating (any channel)"),
    CountDef("actively_rated_records", "主动评价办件数", T, "completed records with an adopted non-default rating"),
    CountDef("default_rated_records", "仅默认评价办件数", T, "rated records whose adopted ratings are all default"),
    CountDef("unrated_records", "未评价办件数", T, "completed records with no adopted first rating"),
    # --- cases (差评工单); every count but the appeal counts leaves out cases whose rating is not adopted ---
    CountDef("cases", "差评工单数", C, "cases of adopted ratings"),
    CountDef("real_name_cases", "实名差评工单数", C, "cases of real-name ratings"),
    CountDef("called_back_cases", "已回访实名差评工单数", C, "real-name cases with at least one callback recorded"),
    CountDef(
        "rectification_cases", "应整改工单数", C, "cases that entered rectification, less those closed as 无法整改"
    ),
    CountDef("rectified_cases", "已整改工单数", C, "rectification cases with a rectification recorded"),
    CountDef(
        "rectified_on_time_cases",
        "按时整改工单数",
        C,
        "rectified cases no rectification deadline of which went overdue",
    ),
    CountDef(
        "rater_answered_cases", "评价人已确认的整改工单数", C, "rectified cases closed on the rater's answer or silence"
    ),
    CountDef(
        "rater_satisfied_cases",
        "评价人满意的整改工单数",
        C,
        "of those, closed satisfied (silence as the profile counts it)",
    ),
    CountDef("cannot_rectify_requested_cases", "申请无法整改工单数", C, "cases with a 无法整改 request"),
    CountDef("cannot_rectify_approved_cases", "无法整改获批工单数", C, "cases with a 无法整改 request approved"),
    CountDef("cannot_rectify_refused_cases", "无法整改被驳回工单数", C, "cases with a 无法整改 request refused"),
    CountDef(
        "cannot_rectify_pending_cases", "无法整改待审批工单数", C, "cases whose 无法整改 request awaits a decision"
    ),
    CountDef("overdue_open_cases", "当前超时工单数", C, "open cases with a deadline overdue now"),
    *(
        CountDef(f"overdue_open_cases_rung_{n}", f"当前第{n}级督办工单数", C, f"open overdue cases now at rung {n}")
        for n in RUNGS
    ),
    *(
        CountDef(
            f"escalated_cases_rung_{n}", f"曾达第{n}级督办工单数", C, f"cases that ever reached rung {n} or higher"
        )
        for n in RUNGS
    ),
    # --- appeals (申诉): the one place cases of not-adopted ratings count, since that is what they measure ---
    CountDef("appealed_cases", "申诉工单数", C, "cases with an appeal filed (whether adopted or not)"),
    CountDef("appeal_decided_cases", "申诉已复核工单数", C, "appealed cases with an appeal decided"),
    CountDef("appeal_upheld_cases", "申诉成立工单数", C, "cases with an appeal upheld (不予采纳)"),
    CountDef("appeal_rejected_cases", "申诉驳回工单数", C, "cases with an appeal rejected"),
    CountDef("appeal_pending_cases", "申诉待复核工单数", C, "cases waiting for the appeal decision now"),
    # --- follow-up ratings (追评) on rectified cases ---
    CountDef(
        "follow_ups_after_rectification", "整改后追评数", F, "follow-ups submitted after their case was rectified"
    ),
    CountDef("good_follow_ups_after_rectification", "整改后追评好评数", F, "of those, not bad reviews"),
)
COUNT_BY_NAME = {count.name: count for count in COUNTS}

INDICATORS: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        "satisfaction_score",
        "满意度得分",
        "average",
        "score_sum",
        "ratings",
        "Σ (ratings at a level × that level's score in the unit's region profile) / ratings",
    ),
    IndicatorDef("good_rate", "好评率", "rate", "good_ratings", "ratings", "good ratings / ratings"),
    IndicatorDef("bad_rate", "差评率", "rate", "bad_ratings", "ratings", "bad ratings / ratings"),
    IndicatorDef(
        "rating_rate", "评价率", "rate", "rated_records", "completed_records", "rated records / completed records"
    ),
    IndicatorDef(
        "active_rating_rate",
        "主动评价率",
        "rate",
        "actively_rated_records",
        "completed_records",
        "records with a rater's own rating / completed records",
    ),
    IndicatorDef(
        "not_rated_rate", "未评价率", "rate", "unrated_records", "completed_records", "unrated / completed records"
    ),
    IndicatorDef(
        "callback_rate",
        "实名差评回访率",
        "rate",
        "called_back_cases",
        "real_name_cases",
        "real-name cases called back / real-name cases",
    ),
    IndicatorDef(
        "rectification_rate",
        "整改率",
        "rate",
        "rectified_cases",
        "rectification_cases",
        "rectified / cases to rectify",
    ),
    IndicatorDef(
        "on_time_rectification_rate",
        "按时整改率",
        "rate",
        "rectified_on_time_cases",
        "rectified_cases",
        "rectified on time / rectified",
    ),
    IndicatorDef(
        "rectification_satisfaction_rate",
        "整改满意率",
        "rate",
        "rater_satisfied_cases",
        "rater_answered_cases",
        "rectified cases the rater was satisfied with / rectified cases the rater answered",
    ),
    IndicatorDef(
        "follow_up_satisfaction_rate",
        "整改后追评好评率",
        "rate",
        "good_follow_ups_after_rectification",
        "follow_ups_after_rectification",
        "good follow-ups after rectification / follow-ups after rectification",
    ),
    IndicatorDef(
        "cannot_rectify_approval_rate",
        "无法整改获批率",
        "rate",
        "cannot_rectify_approved_cases",
        "cannot_rectify_requested_cases",
        "approved / requested 无法整改",
    ),
    IndicatorDef(
        "appeal_uphold_rate",
        "申诉成立率",
        "rate",
        "appeal_upheld_cases",
        "appeal_decided_cases",
        "upheld / decided appeals",
    ),
)
INDICATOR_BY_NAME = {indicator.name: indicator for indicator in INDICATORS}


class NullReason(StrEnum):
    """Why an indicator has no value: never a 0 that is not a measurement."""

    ZERO_DENOMINATOR = "zero_denominator"
    MIXED_SCORE_SCALES = "mixed_score_scales"
    NOT_BY_CHANNEL = "not_by_channel"


NULL_REASON_LABELS_ZH = {
    NullReason.ZERO_DENOMINATOR: "分母为 0（{denominator}为 0），无法计算",
    NullReason.MIXED_SCORE_SCALES: "范围内的地区使用不同的满意度分值（{profiles}），平均分不可比；请按行政区划分组",
    NullReason.NOT_BY_CHANNEL: "办件没有评价渠道：按评价渠道筛选或分组时不计算办件数",
}
