"""Ratings (评价): the five levels, channels, targets, and the rating table."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, EmailStr, Field, StringConstraints, field_validator, model_validator
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.db import UTCDateTime, str_enum, utcnow
from models.pii import EncryptedText
from models.request_body import RequestBody


class RatingLevel(StrEnum):
    """The five levels (GB/T 39046-2020 满意度). Codes differ between source systems, so names are the API."""

    VERY_SATISFIED = "very_satisfied"  # 非常满意 / 很好
    SATISFIED = "satisfied"  # 满意 / 好
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意 / 一般
    DISSATISFIED = "dissatisfied"  # 不满意 / 差
    VERY_DISSATISFIED = "very_dissatisfied"  # 非常不满意 / 很差


LEVEL_LABELS_ZH = {
    RatingLevel.VERY_SATISFIED: "非常满意",
    RatingLevel.SATISFIED: "满意",
    RatingLevel.BASICALLY_SATISFIED: "基本满意",
    RatingLevel.DISSATISFIED: "不满意",
    RatingLevel.VERY_DISSATISFIED: "非常不满意",
}


class RatingChannel(StrEnum):
    """Rating channels (评价渠道, GB/T 39046-2020)."""

    PC = "pc"  # PC端
    MOBILE = "mobile"  # 移动服务端
    QR_CODE = "qr_code"  # 二维码
    HALL_TABLET = "hall_tablet"  # 政务大厅平板电脑
    HALL_TERMINAL = "hall_terminal"  # 政务大厅其他终端 (评价器, 自助终端)
    PHONE = "phone"  # 电话 (12345 热线)
    SMS = "sms"  # 短信
    # 系统默认评价: a rating the source system recorded for a rater who gave none (Zhejiang's channel 7).
    SYSTEM_DEFAULT = "system_default"


class RatingTarget(StrEnum):
    ITEM = "item"  # 事项
    STAFF = "staff"  # 工作人员 (window transactions only)


class ServiceStage(StrEnum):
    """Which stage of the service a rating judges (评价环节), where a source rates stages separately."""

    WHOLE = "whole"  # 整体: the transaction as a whole (every source that does not rate stages)
    ACCEPTANCE = "acceptance"  # 受理
    HANDLING = "handling"  # 办理
    COMPLETION = "completion"  # 办结


SERVICE_STAGE_LABELS_ZH = {
    ServiceStage.WHOLE: "整体",
    ServiceStage.ACCEPTANCE: "受理",
    ServiceStage.HANDLING: "办理",
    ServiceStage.COMPLETION: "办结",
}


class Covers(StrEnum):
    """What one rating of a record of a bundle (一次办多件, 一件事) applies to (docs/intake.md)."""

    BUNDLE = "bundle"  # every record of the bundle: written on each, one case
    RECORD = "record"  # the named record only


class Rating(SQLModel, table=True):
    """One rating of one target of one service record. Rater contact columns are PII: never log or send them."""

    __table_args__ = (
        UniqueConstraint("record_id", "target", "stage", "follow_up", name="uq_rating_record_target_stage_follow_up"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    record_id: int = SQLField(foreign_key="servicerecord.id", index=True)
    level: RatingLevel = SQLField(sa_type=str_enum(RatingLevel))
    channel: RatingChannel = SQLField(sa_type=str_enum(RatingChannel))
    target: RatingTarget = SQLField(sa_type=str_enum(RatingTarget))
    stage: ServiceStage = SQLField(
        default=ServiceStage.WHOLE, sa_type=str_enum(ServiceStage), sa_column_kwargs={"server_default": "whole"}
    )
    # 0 = the rating; n = the rater's n-th follow-up rating (追评) of the same target and stage.
    follow_up: int = SQLField(default=0, sa_column_kwargs={"server_default": "0"})
    # A batch (一次办多件) or theme (一件事) rating is written on each record it covers; the copies point at
    # the first row, which alone carries a case.
    lead_rating_id: int | None = SQLField(default=None, foreign_key="rating.id", index=True)
    answers: dict[str, Any] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    comment: str = SQLField(default="", max_length=2000)
    real_name: bool = False
    # Encrypted at rest (models/pii.py); shown masked; revealed only to the case's handlers, audited.
    rater_name: str | None = SQLField(default=None, sa_type=EncryptedText)
    rater_phone: str | None = SQLField(default=None, sa_type=EncryptedText)
    rater_email: str | None = SQLField(default=None, sa_type=EncryptedText)
    is_bad: bool = SQLField(index=True)
    # False once an appeal is upheld (不予采纳): the rating then leaves every statistic.
    adopted: bool = SQLField(default=True, index=True)
    source_system: str = SQLField(max_length=64)
    submitted_at: datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)
    # Set by the retention job (docs/retention.md): the rater's personal data is gone, the statistics stay.
    anonymised_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)


# A rating's detail answers are a handful of short scores or choices; bounded so one request cannot
# store megabytes in a JSON column that every case view reads back.
MAX_ANSWERS = 20
AnswerKey = Annotated[str, StringConstraints(min_length=1, max_length=50)]
AnswerValue = Annotated[int, Field(ge=-1000, le=1000)] | Annotated[str, StringConstraints(max_length=200)]

_PHONE_RE = re.compile(r"^\+?\d[\d\- ]{5,19}$")


class RaterContact(RequestBody):
    name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    email: EmailStr | None = None

    @field_validator("phone")
    @classmethod
    def _phone_digits(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE_RE.match(value):
            raise ValueError("phone must be digits, optionally with +, spaces or dashes")
        return value


# The answers key under which a rating's content tags (测评内容) are kept, as "<level>/<nn>" (models/rating_codes.py).
TAGS_ANSWER_KEY = "测评内容"
MAX_TAGS = 20


def _code_text(value: object) -> object:
    """Codes arrive as numbers from some systems (satisfaction: 5) and as text from others ("5")."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Code = Annotated[str, BeforeValidator(_code_text), StringConstraints(pattern=r"^[0-9A-Za-z]{1,8}$")]


class RatingCreate(RequestBody):
    """Body of POST /api/v1/ratings.

    The level and the channel each come one way: by name (`level`, `channel`) or as a code of the calling
    source system's own tables (`satisfaction_code`, `channel_code`; docs/intake.md), never both.
    """

    record_no: str = Field(min_length=1, max_length=64, description="办件编号 of a registered service record")
    level: RatingLevel | None = Field(default=None, description="评价等级 by name; or satisfaction_code, not both")
    satisfaction_code: Code | None = Field(
        default=None,
        description="满意度代码 in the calling source system's table (e.g. GB/T 39046 A.8: 1 = 非常满意); or level",
    )
    channel: RatingChannel | None = Field(default=None, description="评价渠道 by name; or channel_code, not both")
    channel_code: Code | None = Field(
        default=None, description="评价渠道代码 in the calling source system's table (GB/T: 6 = 电话); or channel"
    )
    tag_codes: list[Code] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description="测评内容代码: three digits, the first being the level's code in the source's satisfaction table "
        "(with a GB/T source 501 is a 非常不满意 tag); the second and third name the tag in the region's catalogue",
    )
    target: RatingTarget = RatingTarget.ITEM
    stage: ServiceStage | None = Field(
        default=None,
        description="评价环节 by name, for a source that rates stages (受理/办理/办结); or stage_code. Default: whole",
    )
    stage_code: Code | None = Field(
        default=None, description="评价环节代码 in the calling source system's table; or stage"
    )
    covers: Covers | None = Field(
        default=None,
        description="For a record of a bundle: bundle (every record of it, one case) or record (this one only). "
        "Default: bundle for 一次办多件; for 一件事 as the registering source system says",
    )
    answers: dict[AnswerKey, AnswerValue] = Field(
        default_factory=dict,
        max_length=MAX_ANSWERS,
        description=f"Detail questions, e.g. 服务效率 → 3: at most {MAX_ANSWERS}, keys ≤ 50 characters "
        f"({TAGS_ANSWER_KEY} is kept for tag_codes)",
    )
    comment: str = Field(default="", max_length=2000)
    real_name: bool = False
    rater: RaterContact | None = None
    follow_up: bool = Field(
        default=False,
        description="追评: a follow-up rating of a target the rater has rated (the profile sets how many and until when); "
        "or assess_number 2, not both",
    )
    assess_number: int | None = Field(
        default=None,
        ge=1,
        le=2,
        description='评价次数 as provincial interfaces send it (assessNumber, 1 or "1"): 1 首次评价, 2 追评; or follow_up',
    )

    @property
    def is_follow_up(self) -> bool:
        """A follow-up rating (追评), whichever way it was said."""
        return self.follow_up or self.assess_number == 2

    @model_validator(mode="after")
    def _follow_up_one_way(self) -> RatingCreate:
        if self.follow_up and self.assess_number is not None:
            raise ValueError("give follow_up or assess_number, not both")
        return self

    @model_validator(mode="after")
    def _real_name_needs_contact(self) -> RatingCreate:
        if self.real_name and not (self.rater and (self.rater.phone or self.rater.email)):
            raise ValueError("a real-name rating (实名评价) needs rater.phone or rater.email for the callback")
        return self

    @field_validator("answers")
    @classmethod
    def _tags_key_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        if TAGS_ANSWER_KEY in value:
            raise ValueError(f"answers.{TAGS_ANSWER_KEY} is filled from tag_codes; send the tags there")
        return value


class CoveredRating(BaseModel):
    """Another record a bundle rating was written on, and the copy written there."""

    record_no: str
    rating_id: int


class RatingAccepted(BaseModel):
    """Response of POST /api/v1/ratings."""

    rating_id: int
    is_bad: bool
    case_id: int | None
    covered: list[CoveredRating] = Field(
        default_factory=list,
        description="The other records of the bundle this rating was written on (一次办多件, 一件事); "
        "their copies point at rating_id, which alone carries the case",
    )


class RatingRead(BaseModel):
    id: int
    record_no: str
    level: RatingLevel = SQLField(sa_type=str_enum(RatingLevel))
    channel: RatingChannel = SQLField(sa_type=str_enum(RatingChannel))
    target: RatingTarget = SQLField(sa_type=str_enum(RatingTarget))
    stage: ServiceStage
    lead_rating_id: int | None = Field(
        description="For a copy of a bundle rating: the rating written on the record the rater rated (it has the case)"
    )
    covered: list[CoveredRating] = Field(description="For a bundle rating: the copies on the bundle's other records")
    answers: dict[str, Any]
    comment: str
    real_name: bool
    rater_name: str | None
    rater_phone: str | None
    rater_email: str | None
    is_bad: bool
    case_id: int | None
    source_system: str
    submitted_at: datetime
