"""Root-cause rectifications (根源整改): one rectification over the cases of a concentrated problem.

The row is the read model; its workflow (workflows/root_cause.py) owns what happens next and writes
every change here through the record_root_cause_event activity. A case is in at most one open
rectification: its link holds `open_case_id` (unique) while the rectification is open, and the
activity clears it when the rectification is accepted or withdrawn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.db import UTCDateTime, str_enum, utcnow
from models.request_body import RequestBody
from models.root_cause_io import MAX_LINKED_CASES, RootCauseStage


class RootCauseRectification(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    workflow_id: str = Field(unique=True, max_length=100)
    unit_id: int = Field(foreign_key="unit.id", index=True, description="承办单位: the unit that rectifies")
    opened_by: int = Field(foreign_key="user.id", description="The supervisor who opened it")
    title: str = Field(max_length=200, description="问题: the problem in a line")
    problem: str = Field(max_length=8000, description="问题描述: what the raters complained of, and why it recurs")
    # Where it came from: "item:<id>", "unit:<id>" or "staff:<id>" of a concentrated problem; "" chosen by hand.
    concentration: str = Field(default="", max_length=40)
    stage: RootCauseStage = Field(default=RootCauseStage.RECTIFYING, index=True, sa_type=str_enum(RootCauseStage))
    policy_code: str = Field(max_length=32)
    policy_version: int
    within: str = Field(max_length=10, description='The deadline rule, e.g. "20wd"')
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    overdue: bool = Field(default=False, index=True)
    escalation_rung: int = 0
    result: str = Field(default="", max_length=8000, description="整改结果 as last submitted")
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    workflow_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RootCauseLink(SQLModel, table=True):
    """A case a rectification covers. `open_case_id` is the case id while the rectification is open."""

    __table_args__ = (
        UniqueConstraint("rectification_id", "case_id", name="uq_rootcauselink_rectification_case"),
        UniqueConstraint("open_case_id", name="uq_rootcauselink_open_case"),
    )

    id: int | None = Field(default=None, primary_key=True)
    rectification_id: int = Field(foreign_key="rootcauserectification.id", index=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    open_case_id: int | None = Field(default=None)


class RootCauseEvent(SQLModel, table=True):
    """One entry of a rectification's timeline. Append-only; event_key makes a retried write a no-op."""

    __table_args__ = (UniqueConstraint("rectification_id", "event_key", name="uq_rootcauseevent_key"),)

    id: int | None = Field(default=None, primary_key=True)
    rectification_id: int = Field(foreign_key="rootcauserectification.id", index=True)
    event_key: str = Field(max_length=100)
    stage: RootCauseStage = Field(sa_type=str_enum(RootCauseStage))
    action: str = Field(max_length=50)
    actor: str = Field(max_length=50, description='"system" or "user:<id>"')
    at: datetime = Field(sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---- the API's shapes -----------------------------------------------------------------------------


class RootCauseCreate(RequestBody):
    """Body of POST /api/v1/root-cause-rectifications."""

    unit_id: int = PydanticField(ge=1, le=2_147_483_647, description="承办单位: the unit that rectifies the cause")
    title: str = PydanticField(min_length=1, max_length=200, description="问题: the problem in a line")
    problem: str = PydanticField(min_length=1, max_length=8000, description="问题描述")
    case_ids: list[int] = PydanticField(
        min_length=1,
        max_length=MAX_LINKED_CASES,
        description="The cases it covers: in the supervisor's scope, each in no other open root-cause rectification",
    )
    working_days: int | None = PydanticField(
        default=None,
        ge=1,
        le=366,
        description="整改时限 in working days (on the unit's calendar); omitted: the unit's profile default "
        "(root_cause.deadline); at most root_cause.max_working_days",
    )
    concentration: str = PydanticField(
        default="",
        pattern=r"^((item|unit|staff):[0-9]{1,10})?$",
        description='The concentrated problem it comes from ("unit:2"); empty when chosen by hand',
    )


class LinkedCaseRead(BaseModel):
    case_id: int
    unit_name: str
    item_name: str
    record_no: str
    stage: str
    comment: str


class RootCauseEventRead(BaseModel):
    stage: RootCauseStage
    action: str
    actor: str
    at: datetime
    data: dict[str, Any]


class RootCauseSummary(BaseModel):
    id: int
    unit_id: int
    unit_name: str
    title: str
    stage: RootCauseStage
    stage_label: str
    case_count: int
    due_at: datetime | None
    overdue: bool
    escalation_rung: int
    opened_at: datetime
    closed_at: datetime | None


class RootCauseRead(RootCauseSummary):
    workflow_id: str
    opened_by: int
    problem: str
    concentration: str
    policy_code: str
    policy_version: int
    within: str
    result: str
    workflow_started: bool
    cases: list[LinkedCaseRead]
    timeline: list[RootCauseEventRead]


class RootCausePage(BaseModel):
    items: list[RootCauseSummary]
    total: int
    limit: int
    offset: int
