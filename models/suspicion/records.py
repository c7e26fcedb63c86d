"""The suspicion tables: each rating's fingerprint (what detectors compare), the flags, and their ratings.

A flag never changes a rating: it lists rating ids and says why they look alike. Phones and client
addresses appear only as keyed hashes (models/suspicion/keys.py), so neither the fingerprint nor the
flag holds anything the encrypted rater columns protect.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.db import UTCDateTime, str_enum, utcnow
from models.ratings import RatingChannel


class Detector(StrEnum):
    """Which pattern a flag is about (docs/suspicious-ratings.md)."""

    SAME_PHONE = "same_phone"  # one phone, many transactions
    SAME_CLIENT = "same_client"  # one address and browser, many transactions
    STAFF_BURST = "staff_burst"  # 刷好评: many good ratings of one staff member in minutes
    STAFF_RATE = "staff_rate"  # 刷好评: far above the staff member's usual daily rate
    REPEATED_BAD = "repeated_bad"  # 恶意差评: one rater's repeated bad reviews of one unit
    IDENTICAL_COMMENT = "identical_comment"  # machine-made: the same comment and scores
    CONSTANT_OFFSET = "constant_offset"  # machine-made: a fixed time after completion
    CHANNEL_MISMATCH = "channel_mismatch"  # machine-made: a channel the source system cannot have


DETECTOR_LABELS_ZH = {
    Detector.SAME_PHONE: "同一手机号评价多个办件",
    Detector.SAME_CLIENT: "同一终端评价多个办件",
    Detector.STAFF_BURST: "工作人员短时间内集中获得好评（疑似刷好评）",
    Detector.STAFF_RATE: "工作人员好评数远超平常（疑似刷好评）",
    Detector.REPEATED_BAD: "同一评价人反复差评同一单位（疑似恶意差评）",
    Detector.IDENTICAL_COMMENT: "多条评价内容完全相同（疑似机器生成）",
    Detector.CONSTANT_OFFSET: "办结到评价的间隔固定不变（疑似系统代评）",
    Detector.CHANNEL_MISMATCH: "来源系统提交了其不具备的评价渠道（疑似系统代评）",
}


class FlagStatus(StrEnum):
    OPEN = "open"  # 待核查
    CONFIRMED = "confirmed"  # 确认可疑
    DISMISSED = "dismissed"  # 排除


FLAG_STATUS_LABELS_ZH = {FlagStatus.OPEN: "待核查", FlagStatus.CONFIRMED: "确认可疑", FlagStatus.DISMISSED: "已排除"}


class RatingFingerprint(SQLModel, table=True):
    """What the detectors compare of one rating, written in its own transaction; indexed for the intake's lookups."""

    __table_args__ = (
        Index("ix_ratingfingerprint_phone_at", "phone_key", "submitted_at"),
        Index("ix_ratingfingerprint_client_at", "client_key", "submitted_at"),
        Index("ix_ratingfingerprint_staff_at", "staff_id", "submitted_at"),
        Index("ix_ratingfingerprint_content_at", "content_key", "submitted_at"),
        Index("ix_ratingfingerprint_source_at", "source_system", "submitted_at"),
    )

    rating_id: int = Field(primary_key=True, foreign_key="rating.id")
    record_id: int = Field(foreign_key="servicerecord.id")
    unit_id: int = Field(foreign_key="unit.id")
    # The staff member a staff rating is of; None for item ratings (only staff ratings make 刷好评 of a person).
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    good: bool = Field(description="好评: the top two levels")
    bad: bool = Field(description="差评, by the profile the rating was judged under")
    phone_key: str | None = Field(default=None, max_length=64, description="keyed hash of the rater's phone")
    client_key: str | None = Field(default=None, max_length=64, description="keyed hash of the submitting client")
    content_key: str | None = Field(default=None, max_length=64, description="keyed hash of comment and answers")
    content_chars: int = Field(default=0, description="letters and digits in the comment")
    source_system: str = Field(max_length=64)
    channel: RatingChannel = Field(sa_type=str_enum(RatingChannel))
    offset_seconds: int = Field(description="from the transaction's completion to the rating")
    submitted_at: datetime = Field(sa_type=UTCDateTime, index=True)


class SuspicionFlag(SQLModel, table=True):
    """One suspicious pattern (可疑评价) for a person to review: open, then confirmed or dismissed."""

    __table_args__ = (Index("ix_suspicionflag_detector_subject", "detector", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    detector: Detector = Field(sa_type=str_enum(Detector))
    subject: str = Field(max_length=128, description="what the ratings share: a keyed hash, a staff id, a system")
    # "<detector>:<subject>" while open, None once decided: at most one open flag per pattern, by constraint.
    open_key: str | None = Field(default=None, max_length=160, unique=True)
    status: FlagStatus = Field(default=FlagStatus.OPEN, sa_type=str_enum(FlagStatus), index=True)
    # The smallest unit whose subtree holds every rating's unit: whose supervisors see it (None: admins only).
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    reason: str = Field(max_length=1000, description="why, in Chinese, with the numbers")
    rating_count: int = 0
    first_at: datetime = Field(sa_type=UTCDateTime, description="the earliest rating's submission")
    last_at: datetime = Field(sa_type=UTCDateTime, description="the latest rating's submission")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_by: int | None = Field(default=None, foreign_key="user.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    note: str = Field(default="", max_length=1000)


class SuspicionFlagRating(SQLModel, table=True):
    """A rating behind a flag. A rating may be behind flags of several detectors, once in each."""

    flag_id: int = Field(primary_key=True, foreign_key="suspicionflag.id")
    rating_id: int = Field(primary_key=True, foreign_key="rating.id", index=True)


CHANNEL_LABELS_ZH = {
    RatingChannel.PC: "PC端",
    RatingChannel.MOBILE: "移动服务端",
    RatingChannel.QR_CODE: "二维码",
    RatingChannel.HALL_TABLET: "政务大厅平板电脑",
    RatingChannel.HALL_TERMINAL: "政务大厅其他终端",
    RatingChannel.PHONE: "电话",
    RatingChannel.SMS: "短信",
    RatingChannel.SYSTEM_DEFAULT: "系统默认评价",
}


def channel_label(channel: str) -> str:
    """A channel's Chinese name; a channel added since (or unknown) shows its code."""
    try:
        return CHANNEL_LABELS_ZH.get(RatingChannel(channel), channel)
    except ValueError:
        return channel
