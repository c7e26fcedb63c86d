"""Requests for a case step (办理请求): one row per HTTP call that asks the workflow to act.

Written before the Update is sent. It carries what the workflow must not see (the caller's address
for the audit record) and what makes retries safe: the Update id a retry with the same
Idempotency-Key reuses, and the fingerprint of the request, so a key reused for another step or
body is refused. The record_case_event activity marks the row completed when the step's timeline
event is written, in the same transaction as that event and its audit record.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.db import UTCDateTime, utcnow


class CaseStepRequest(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("case_id", "requester", "idempotency_key", name="uq_casesteprequest_key"),)

    id: int | None = Field(default=None, primary_key=True)
    update_id: str = Field(max_length=64, unique=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    requester: str = Field(max_length=50, description='"user:<id>" or "rater:<link id>"')
    action: str = Field(max_length=50, description="the step's path, e.g. accept, callbacks")
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str = Field(max_length=64)
    client: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    event_key: str | None = Field(default=None, max_length=100, description="the timeline event the step wrote")
