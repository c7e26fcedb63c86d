"""Policy profiles (政策配置): every number a region sets, as versioned data.

A profile is pure data (pydantic, workflow-safe). The files in policy/profiles/ seed the database;
an admin edits a profile through the API and each edit is a new version. A case pins the version
it started under (the whole profile travels in the workflow input), so an edit never moves the
deadlines of a running case.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Literal, cast

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from models.deadlines import DeadlineSpec
from models.office_hours import OfficeHours
from models.suspicion.rules import SuspicionRules

LEVELS = ("very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied")
Level = Literal["very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied"]


class DeadlineName(StrEnum):
    """Each stage deadline a profile sets (时限)."""

    CALLBACK = "callback"  # 回访: from the case opening
    VERIFICATION = "verification"  # 核实: from the case opening (each round)
    RECTIFICATION_IMMEDIATE = "rectification_immediate"  # 立行立改: from the verdict
    RECTIFICATION_LEDGER_MAX = "rectification_ledger_max"  # 台账: the latest due date a unit may set
    EXPLANATION = "explanation"  # 解释说明: from the verdict
    FEEDBACK = "feedback"  # 反馈: from rectification or explanation
    RATER_RESPONSE = "rater_response"  # 评价人确认: from the feedback being sent
    APPEAL_FILING = "appeal_filing"  # 申诉提交: from the disputed verdict
    APPEAL_DECISION = "appeal_decision"  # 申诉复核: from the appeal being filed


class DeadlineRule(BaseModel):
    within: DeadlineSpec
    remind_before: list[DeadlineSpec] = Field(default_factory=list, description="Reminders, natural time before due")
    source: str = Field(
        min_length=1, description="Where the number comes from (document, article, or 'system default')"
    )

    @field_validator("remind_before")
    @classmethod
    def _natural_time_only(cls, value: list[DeadlineSpec]) -> list[DeadlineSpec]:
        for spec in value:
            if spec.unit == "working_days":
                raise ValueError("reminders are set in natural time before the deadline (h, m or d), not working days")
        moments = [spec.as_timedelta() for spec in value]
        repeated = sorted({str(spec) for spec in value if moments.count(spec.as_timedelta()) > 1})
        if repeated:
            # Two reminders at one moment would send the unit two identical notices at once.
            raise ValueError(f"two reminders at the same moment before the deadline: {', '.join(repeated)}")
        return sorted(value, key=lambda s: s.as_timedelta(), reverse=True)


class LevelRule(BaseModel):
    level: Level
    label: str = Field(min_length=1, max_length=20)
    score: float = Field(ge=0, le=100)
    bad: bool


class EscalationRung(BaseModel):
    """One rung of the escalation ladder (督办升级)."""

    rung: int = Field(ge=1, le=5)
    notify: Literal["supervisor", "management_office"]
    after_overdue: DeadlineSpec | None = Field(
        default=None, description="How long a stage stays overdue before this rung fires; none = at once"
    )
    source: str = Field(min_length=1)

    @field_validator("after_overdue")
    @classmethod
    def _natural_time(cls, value: DeadlineSpec | None) -> DeadlineSpec | None:
        if value is not None and value.unit == "working_days":
            raise ValueError("escalation delays are natural time (h, m or d)")
        return value

    def delay(self) -> timedelta:
        """How long after the due this rung fires."""
        return self.after_overdue.as_timedelta() if self.after_overdue else timedelta(0)


class RatingWindows(BaseModel):
    """Rating-side timing: supplementary rating, invitation, default rating, follow-up rating (追评).

    docs/intake.md says how each is applied. The fields added later have defaults, so profile
    versions stored before them still read.
    """

    supplementary: DeadlineSpec = Field(description="补充评价: how long after completion a missing rating may be added")
    invitation_after: DeadlineSpec = Field(description="短信邀评: when an unrated transaction gets an invitation")
    follow_up_ratings: int = Field(ge=0, le=3, description="追评: how many follow-up ratings a rater may add")
    follow_up_within: DeadlineSpec = Field(
        default=DeadlineSpec(amount=15, unit="days"),
        description="追评: how long after the first rating a follow-up rating may come",
    )
    default_after: DeadlineSpec | None = Field(
        default=None,
        description="默认评价: how long after completion an unrated transaction is rated default_level; none = never",
    )
    default_level: Level | None = Field(default=None, description="默认评价: the level written; never a bad review")
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _default_complete(self) -> RatingWindows:
        if (self.default_after is None) != (self.default_level is None):
            raise ValueError("rating.default_after and rating.default_level go together: give both or neither")
        return self


class AnonymousRules(BaseModel):
    """What changes when the rater gave no name or contact (匿名评价)."""

    callback_required: bool = False
    feedback_possible: bool = Field(default=False, description="With no contact there is nobody to tell")
    source: str = Field(min_length=1)


TagNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")]
TagLabel = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class TagCatalogue(BaseModel):
    """测评内容: the tags a rater may pick at each level, numbered 01–99 within the level.

    On the wire a tag is three digits (测评内容代码): the level's code in the sending system's own
    satisfaction table, then the tag's number here. So 501 from a GB/T 39046 system and 101 from a
    provincial one are the same 非常不满意 tag 01 (models/rating_codes.py).
    """

    levels: dict[Level, dict[TagNumber, TagLabel]] = Field(default_factory=dict)
    source: str = Field(default="system default: no tags", min_length=1)

    def label(self, level: str, number: str) -> str | None:
        return self.levels.get(cast(Level, level), {}).get(number)


class ConcentrationRules(BaseModel):
    """差评集中: when the bad reviews of one item, unit or staff member count as a concentrated problem.

    `min_bad` adopted bad reviews within `within` (natural time, up to the moment looked at); `keywords`
    is how many common words of their comments are shown (docs/root-cause.md).
    """

    min_bad: int = Field(default=5, ge=2, le=1000, description="Adopted bad reviews that make a problem concentrated")
    within: DeadlineSpec = Field(default=DeadlineSpec(amount=30, unit="days"), description="The period counted")
    keywords: int = Field(default=8, ge=1, le=30, description="Common words of the comments shown per problem")
    source: str = Field(default="system default: five adopted bad reviews within 30 days", min_length=1)

    @field_validator("within")
    @classmethod
    def _natural_time(cls, value: DeadlineSpec) -> DeadlineSpec:
        if value.unit == "working_days":
            raise ValueError("concentration.within is a period of natural time (d, h or m), not working days")
        return value


class RootCauseRules(BaseModel):
    """根源整改: the deadline of a root-cause rectification a supervisor opens over many cases.

    `deadline` is the default (its reminders and source as any deadline's); a supervisor may give another
    number of working days, at most `max_working_days`. The escalation ladder is the profile's own.
    """

    deadline: DeadlineRule = Field(
        default=DeadlineRule(
            within=DeadlineSpec(amount=20, unit="working_days"),
            remind_before=[DeadlineSpec(amount=3, unit="days"), DeadlineSpec(amount=1, unit="days")],
            source="system default: 20 working days for a rectification of the cause of many bad reviews",
        )
    )
    max_working_days: int = Field(default=60, ge=1, le=366, description="The longest deadline a supervisor may give")
    source: str = Field(default="system default: at most 60 working days", min_length=1)

    @model_validator(mode="after")
    def _default_within_max(self) -> RootCauseRules:
        within = self.deadline.within
        if within.unit == "working_days" and within.amount > self.max_working_days:
            raise ValueError(f"root_cause.deadline.within ({within}) is longer than max_working_days")
        return self


# The indicators a ranking may weigh: each higher-is-better and defined for a unit, a window and a staff member.
RankingIndicator = Literal[
    "satisfaction_score",
    "good_rate",
    "callback_rate",
    "rectification_rate",
    "on_time_rectification_rate",
    "rectification_satisfaction_rate",
]


_DEFAULT_WEIGHTS: dict[RankingIndicator, float] = {
    "satisfaction_score": 0.5,
    "good_rate": 0.3,
    "on_time_rectification_rate": 0.2,
}


class RankingRules(BaseModel):
    """排名通报 and 约谈: the monthly ranking's formula and when a unit at the bottom is called to a talk.

    A score is 100 × Σ weight × the indicator (the satisfaction score as a share of the profile's top
    score); an indicator with nothing to measure counts as `missing_as`. Fewer than `min_ratings` ratings
    in the month: not ranked. A unit in the bottom `talk_bottom` for `talk_months` months running is
    flagged for a talk (docs/reports.md).
    """

    weights: dict[RankingIndicator, float] = Field(
        default_factory=lambda: _DEFAULT_WEIGHTS.copy(),
        min_length=1,
        description="Each indicator's weight; they add up to 1",
    )
    missing_as: float = Field(
        default=1.0, ge=0, le=1, description="An indicator without a value (nothing to divide) as a share of full marks"
    )
    min_ratings: int = Field(default=10, ge=1, le=100_000, description="Ratings in the month needed to be ranked")
    talk_bottom: int = Field(default=3, ge=1, le=100, description="约谈: the bottom N of the ranked units")
    talk_months: int = Field(default=2, ge=1, le=12, description="约谈: months running at the bottom")
    source: str = Field(
        default="system default: a weighted score, 10 ratings to be ranked, bottom 3 for 2 months", min_length=1
    )

    @field_validator("weights")
    @classmethod
    def _weights_add_up(cls, value: dict[str, float]) -> dict[str, float]:
        if any(weight <= 0 or weight > 1 for weight in value.values()):
            raise ValueError("each ranking weight is more than 0 and at most 1")
        if abs(sum(value.values()) - 1) > 1e-9:
            raise ValueError(f"ranking weights add up to 1 (they add up to {sum(value.values()):g})")
        return value


class PolicyProfile(BaseModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")
    name: str = Field(min_length=1, max_length=100)
    levels: list[LevelRule]
    deadlines: dict[DeadlineName, DeadlineRule]
    escalation: list[EscalationRung] = Field(min_length=1)
    max_reopen_rounds: int = Field(
        ge=0, le=10, description="重新交办: how many times a not-satisfied rater reopens a case"
    )
    max_reopen_source: str = Field(min_length=1)
    rater_silence_outcome: Literal["satisfied", "not_satisfied"]
    rater_silence_source: str = Field(min_length=1)
    anonymous: AnonymousRules
    rating: RatingWindows
    reviewers_see_rater_identity: bool = Field(
        default=False, description="Whether appeal reviewers (复核) see who the rater is; masked fields otherwise"
    )
    office_hours: OfficeHours = Field(
        default_factory=OfficeHours, description="When reminders and escalation notices may reach a unit"
    )
    suspicion: SuspicionRules = Field(
        default_factory=SuspicionRules, description="Thresholds of the suspicious-rating detectors (可疑评价)"
    )
    tags: TagCatalogue = Field(default_factory=TagCatalogue, description="测评内容: the content tags of each level")
    concentration: ConcentrationRules = Field(
        default_factory=ConcentrationRules, description="差评集中: when bad reviews count as a concentrated problem"
    )
    root_cause: RootCauseRules = Field(
        default_factory=RootCauseRules, description="根源整改: the deadline of a root-cause rectification"
    )
    ranking: RankingRules = Field(
        default_factory=RankingRules, description="排名通报 and 约谈: the monthly ranking's formula and the talk rule"
    )

    @model_validator(mode="after")
    def _complete(self) -> PolicyProfile:
        if sorted(rule.level for rule in self.levels) != sorted(LEVELS):
            raise ValueError(f"levels must list each of {', '.join(LEVELS)} exactly once")
        missing = [name.value for name in DeadlineName if name not in self.deadlines]
        if missing:
            raise ValueError(f"deadlines missing: {', '.join(missing)}")
        if [r.rung for r in self.escalation] != list(range(1, len(self.escalation) + 1)):
            raise ValueError("escalation rungs must be numbered 1, 2, ... in order")
        for earlier, later in pairwise(self.escalation):
            # Rungs fire one after another: a later rung set before an earlier one would fire with it, unannounced.
            if later.delay() < earlier.delay():
                raise ValueError(
                    f"escalation rung {later.rung} ({later.after_overdue or 'at once'}) comes before rung "
                    f"{earlier.rung} ({earlier.after_overdue}): a later rung's after_overdue may not be shorter"
                )
        if not any(rule.bad for rule in self.levels):
            raise ValueError("at least one level must be a bad review")
        if self.rating.default_level is not None and self.is_bad(self.rating.default_level):
            # A default rating stands for a rater who said nothing: it may never open a case.
            raise ValueError(f"rating.default_level {self.rating.default_level!r} is a bad review level")
        return self

    def level(self, level: str) -> LevelRule:
        return next(rule for rule in self.levels if rule.level == level)

    def is_bad(self, level: str) -> bool:
        return self.level(level).bad

    def deadline(self, name: DeadlineName) -> DeadlineRule:
        return self.deadlines[name]


class PinnedPolicy(BaseModel):
    """The profile version a case runs under, carried whole in the workflow input."""

    code: str
    version: int
    profile: PolicyProfile
