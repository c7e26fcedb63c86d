"""What the retention workflow and its activities pass each other: counts, cursors and times. No PII."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class RetentionActivity(StrEnum):
    RATINGS = "retention.ratings"  # one batch of ratings anonymised (models/retention.py)
    RECORDS = "retention.records"  # one batch of applicant contacts erased from service records


class RetentionInput(BaseModel):
    """The schedule's argument: how big a batch is and how many batches one run takes at most."""

    batch_size: int = Field(default=200, ge=1, le=5000)
    max_batches: int = Field(
        default=500, ge=1, le=5000, description="A run stops after this many batches of each kind; the next run goes on"
    )


class RetentionBatchInput(BaseModel):
    now: datetime = Field(description="The run's moment (its workflow's start): every batch judges by it")
    after_id: int = Field(ge=0, description="Keyset cursor: rows with a larger id")
    limit: int = Field(ge=1, le=5000)


class RetentionBatchResult(BaseModel):
    last_id: int | None = Field(description="The next batch's cursor; None when no row was left")
    scanned: int = Field(description="Rows taken by this batch: each was anonymised (or erased)")
    cases: int = Field(default=0, description="Cases whose timeline texts were masked")


class RetentionReport(BaseModel):
    """What one run did (its workflow result, for the Temporal UI)."""

    ratings: int = 0
    cases: int = 0
    records: int = 0
    batches: int = 0
