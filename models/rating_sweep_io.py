"""What the rating sweep workflow and its activities pass each other: counts, cursors and times. No PII."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class SweepActivity(StrEnum):
    INVITE = "rating_sweep.invite"  # 邀评: one batch of invitations (models/invitation_sweep.py)
    DEFAULT = "rating_sweep.default"  # 默认评价: one batch of default ratings (models/default_ratings.py)


class RatingSweepInput(BaseModel):
    """The schedule's argument: how big a batch is and how many batches one run takes at most."""

    batch_size: int = Field(default=500, ge=1, le=5000)
    max_batches: int = Field(
        default=200, ge=1, le=1000, description="A run stops after this many batches of each kind; the next run goes on"
    )


class SweepBatchInput(BaseModel):
    now: datetime = Field(description="The sweep's moment (its workflow's start): every batch judges by it")
    after_id: int = Field(ge=0, description="Keyset cursor: records with a larger id")
    limit: int = Field(ge=1, le=5000)


class SweepBatchResult(BaseModel):
    last_id: int | None = Field(description="The next batch's cursor; None when no record was left")
    scanned: int
    written: int = Field(description="Invitations queued, or default ratings written")
    sms: int = 0
    email: int = 0


class RatingSweepReport(BaseModel):
    """What one run did (its workflow result, for the Temporal UI)."""

    invitations: int = 0
    sms: int = 0
    email: int = 0
    default_ratings: int = 0
    batches: int = 0
