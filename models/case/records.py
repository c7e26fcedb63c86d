"""Cases (差评工单): one per bad rating, and their append-only timeline (办理记录).

The case row is the read model: the workflow owns what happens next and writes every transition
here through the record_case_event activity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.case.vocabulary import DeadlineView, Outcome, Stage, Verdict
from models.db import UTCDateTime, str_enum, utcnow
from models.deadlines import DueExplanation
from models.notifications import NoticeView
from models.ratings import ServiceStage
from models.services import BundleKind


class Case(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    rating_id: int = Field(foreign_key="rating.id", unique=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    workflow_id: str = Field(unique=True, max_length=100)
    stage: Stage = Field(default=Stage.ASSIGNED, index=True, sa_type=str_enum(Stage))
    verdict: Verdict | None = Field(default=None, sa_type=str_enum(Verdict))
    outcome: Outcome | None = Field(default=None, sa_type=str_enum(Outcome))
    round: int = 1
    overdue: bool = Field(default=False, index=True)
    escalation_rung: int = Field(default=0, index=True)
    policy_code: str = Field(max_length=32)
    policy_version: int
    # Every deadline of the current round (DeadlineView as JSON), and the earliest one still running.
    deadlines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    has_provisional_deadline: bool = Field(default=False, index=True)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    workflow_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaseEvent(SQLModel, table=True):
    """One entry of a case's timeline. Append-only; event_key makes a retried write a no-op."""

    __table_args__ = (UniqueConstraint("case_id", "event_key", name="uq_caseevent_case_key"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    event_key: str = Field(max_length=100)
    stage: Stage = Field(sa_type=str_enum(Stage))
    round: int = 1
    action: str = Field(max_length=50)
    actor: str = Field(max_length=50, description='"system" or "user:<id>"')
    at: datetime = Field(sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaseEventRead(BaseModel):
    stage: Stage
    round: int
    action: str
    actor: str
    at: datetime
    data: dict[str, Any]


class RaterView(BaseModel):
    """The rater as a case handler sees them by default: masked."""

    real_name: bool
    name: str | None
    phone: str | None
    email: str | None


class CoveredRecordView(BaseModel):
    """A record a bundle rating (一次办多件, 一件事) was also written on: this case handles its rating too."""

    record_no: str
    item_name: str
    unit_name: str
    rating_id: int


class RaterAnswerView(BaseModel):
    round: int
    satisfied: bool | None
    comment: str
    answered_at: datetime | None


class CaseSummary(BaseModel):
    id: int
    rating_id: int
    unit_id: int
    unit_name: str
    item_name: str
    record_no: str
    level: str
    level_label: str = Field(description="the pinned policy's name for the level, e.g. 很差 or 非常不满意")
    stage: Stage
    round: int
    overdue: bool
    escalation_rung: int
    next_due_at: datetime | None
    outcome: Outcome | None
    opened_at: datetime
    closed_at: datetime | None


class DeadlineRead(DeadlineView):
    """A deadline on the case page: the stored DeadlineView, its Chinese name and how it was computed.

    A read type of its own, so the explanation never enters the workflow's DeadlineView (whose
    shape recorded histories replay) nor the case row.
    """

    label: str = Field(description="e.g. 回访, 台账整改")
    explanation: DueExplanation | None = Field(
        default=None, description="时限说明; none when the case's pinned policy version is not stored"
    )


class CaseDetail(CaseSummary):
    workflow_id: str
    verdict: Verdict | None
    policy_code: str
    policy_version: int
    deadlines: list[DeadlineRead]
    workflow_started: bool
    comment: str
    rater: RaterView
    rater_answers: list[RaterAnswerView]
    timeline: list[CaseEventRead]
    notices: list[NoticeView] = Field(default_factory=list, description="every email and SMS about the case")
    service_stage: ServiceStage = Field(default=ServiceStage.WHOLE, description="评价环节: the stage the rating judged")
    bundle_kind: BundleKind | None = Field(
        default=None, description="visit 一次办多件 or theme 一件事, for a bundle rating"
    )
    theme_name: str | None = Field(default=None, description="主题名称 of a 一件事")
    covered_records: list[CoveredRecordView] = Field(
        default_factory=list, description="The other records the rating covers (its copies); one case for all"
    )


class CasePage(BaseModel):
    items: list[CaseSummary]
    total: int
    limit: int
    offset: int
