"""The suspicion section of a policy profile (可疑评价识别): every threshold a detector uses, with its source.

Pure data, like the rest of the profile. The defaults here are the national profile's numbers
(policy/profiles/national.toml, where each one names its source); they also stand in for stored
profile versions written before the section existed, so those still validate.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from models.deadlines import DeadlineSpec

# The rating channels by value (models/ratings.py RatingChannel): the profile stays pure data that the
# workflow sandbox can import, without the table modules.
Channel = Literal["pc", "mobile", "qr_code", "hall_tablet", "hall_terminal", "phone", "sms"]


def _natural(value: DeadlineSpec) -> DeadlineSpec:
    if value.unit == "working_days":
        raise ValueError("suspicion windows are natural time (d, h or m), not working days")
    return value


class CountRule(BaseModel):
    """`ratings` or more within `within` make the pattern."""

    ratings: int = Field(ge=2, le=10_000)
    within: DeadlineSpec
    source: str = Field(min_length=1)

    _natural_time = field_validator("within")(_natural)

    @property
    def window(self) -> timedelta:
        return self.within.as_timedelta()


class IdenticalCommentRule(CountRule):
    """Identical comments only count when the comment is long enough that people would not write it alike."""

    min_chars: int = Field(ge=1, le=500, description="shortest comment (letters and digits, no punctuation) compared")


class StaffRateRule(BaseModel):
    """A staff member's good ratings in the last `period`, against their usual rate over `baseline` before it."""

    factor: float = Field(ge=1.5, le=100)
    min_ratings: int = Field(ge=2, le=10_000, description="fewer good ratings than this in a period are never flagged")
    period: DeadlineSpec
    baseline: DeadlineSpec
    source: str = Field(min_length=1)

    _natural_time = field_validator("period", "baseline")(_natural)


class ConstantOffsetRule(BaseModel):
    """Ratings a machine posts a fixed time after completion: many, close together, most of a system's ratings."""

    ratings: int = Field(ge=3, le=100_000)
    tolerance_seconds: int = Field(ge=0, le=3600)
    share: float = Field(gt=0, le=1, description="of the source system's ratings on that channel in the window")
    within: DeadlineSpec
    source: str = Field(min_length=1)

    _natural_time = field_validator("within")(_natural)


class ChannelRule(BaseModel):
    """The channels a business system cannot have, for the transactions it registered itself."""

    window_system_lacks: list[Channel] = Field(description="channels a window-hall system has no front end for")
    online_system_lacks: list[Channel] = Field(description="channels an online system has no device for")
    source: str = Field(min_length=1)


_DEFAULT_SOURCE = "system default (docs/suspicious-ratings.md)"


class SuspicionRules(BaseModel):
    """Thresholds of the suspicious-rating detectors (docs/suspicious-ratings.md)."""

    same_phone: CountRule = CountRule(ratings=8, within=DeadlineSpec.parse("24h"), source=_DEFAULT_SOURCE)
    same_client: CountRule = CountRule(ratings=20, within=DeadlineSpec.parse("60m"), source=_DEFAULT_SOURCE)
    staff_burst: CountRule = CountRule(ratings=10, within=DeadlineSpec.parse("30m"), source=_DEFAULT_SOURCE)
    staff_rate: StaffRateRule = StaffRateRule(
        factor=5,
        min_ratings=20,
        period=DeadlineSpec.parse("1d"),
        baseline=DeadlineSpec.parse("28d"),
        source=_DEFAULT_SOURCE,
    )
    repeated_bad: CountRule = CountRule(ratings=3, within=DeadlineSpec.parse("30d"), source=_DEFAULT_SOURCE)
    identical_comment: IdenticalCommentRule = IdenticalCommentRule(
        ratings=5, within=DeadlineSpec.parse("7d"), min_chars=8, source=_DEFAULT_SOURCE
    )
    constant_offset: ConstantOffsetRule = ConstantOffsetRule(
        ratings=20, tolerance_seconds=5, share=0.8, within=DeadlineSpec.parse("1d"), source=_DEFAULT_SOURCE
    )
    channel_mismatch: ChannelRule = ChannelRule(
        window_system_lacks=["pc", "mobile"],
        online_system_lacks=["hall_tablet", "hall_terminal"],
        source=_DEFAULT_SOURCE,
    )
