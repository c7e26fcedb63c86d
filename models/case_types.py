"""Types shared by the case workflow, its activities and the API.

This module is imported inside the Temporal workflow sandbox, so it holds pure pydantic types
only: no SQLModel, no I/O. None of these types carries a rater's name, phone number or email;
the workflow sees ids, levels, codes and timestamps (DESIGN.md, "No PII in Temporal").
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from models.deadlines import DeadlineSpec, DueDate


class Stage(StrEnum):
    """Where a bad-review case stands (办理阶段)."""

    ASSIGNED = "assigned"  # 已交办: waiting for the unit to accept
    VERIFICATION = "verification"  # 核实回访: verify the facts and call the rater back
    RECTIFICATION = "rectification"  # 整改
    EXPLANATION = "explanation"  # 解释说明: the review has no legal basis
    FEEDBACK = "feedback"  # 反馈: tell the rater the result
    CLOSED = "closed"  # 办结


# The whole state machine of the first cut: a stage may only move to one of these.
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.ASSIGNED: frozenset({Stage.VERIFICATION}),
    Stage.VERIFICATION: frozenset({Stage.RECTIFICATION, Stage.EXPLANATION}),
    Stage.RECTIFICATION: frozenset({Stage.FEEDBACK}),
    Stage.EXPLANATION: frozenset({Stage.FEEDBACK}),
    Stage.FEEDBACK: frozenset({Stage.CLOSED}),
    Stage.CLOSED: frozenset(),
}

STAGE_LABELS_ZH: dict[Stage, str] = {
    Stage.ASSIGNED: "已交办",
    Stage.VERIFICATION: "核实回访",
    Stage.RECTIFICATION: "整改",
    Stage.EXPLANATION: "解释说明",
    Stage.FEEDBACK: "反馈",
    Stage.CLOSED: "办结",
}


class Verdict(StrEnum):
    """The unit's verification verdict (核实结论)."""

    VALID = "valid"  # 情况属实: rectify
    NO_LEGAL_BASIS = "no_legal_basis"  # 诉求无政策依据: explain


class RectificationMode(StrEnum):
    IMMEDIATE = "immediate"  # 立行立改
    LEDGER = "ledger"  # 列入台账


class Actor(BaseModel):
    """Who asks the workflow to act: a staff user's id, role and unit (never their name)."""

    user_id: int
    role: str
    unit_id: int | None = None

    @property
    def label(self) -> str:
        return f"user:{self.user_id}"


SYSTEM_ACTOR = "system"


class CaseWorkflowInput(BaseModel):
    """Everything a case workflow starts from. Ids and rules only."""

    case_id: int
    rating_id: int
    unit_id: int
    level: str
    real_name: bool
    rater_has_email: bool
    callback_deadline: DeadlineSpec


# Human steps. Each *Fields model is the HTTP request body; the *Input adds who is acting.


class AcceptFields(BaseModel):
    note: str = Field(default="", max_length=2000)


class CallbackFields(BaseModel):
    """One callback attempt (回访): whether the rater was reached, and what was said."""

    reached: bool
    note: str = Field(min_length=1, max_length=4000)


class VerificationFields(BaseModel):
    verdict: Verdict
    findings: str = Field(min_length=1, max_length=8000)


class RectificationFields(BaseModel):
    mode: RectificationMode
    measures: str = Field(min_length=1, max_length=8000)


class ExplanationFields(BaseModel):
    explanation: str = Field(min_length=1, max_length=8000)


class FeedbackFields(BaseModel):
    """The result told to the rater (反馈内容)."""

    message: str = Field(min_length=1, max_length=8000)


class AcceptInput(AcceptFields):
    actor: Actor


class CallbackInput(CallbackFields):
    actor: Actor


class VerificationInput(VerificationFields):
    actor: Actor


class RectificationInput(RectificationFields):
    actor: Actor


class ExplanationInput(ExplanationFields):
    actor: Actor


class FeedbackInput(FeedbackFields):
    actor: Actor


class CaseSnapshot(BaseModel):
    """The workflow's view of a case, returned by every update and by the state query."""

    case_id: int
    stage: Stage
    callback_due_at: datetime | None = None
    callback_due_provisional: bool = False
    callback_done: bool = False
    overdue: bool = False
    verdict: Verdict | None = None


# Activity inputs: one model per activity call.


class ComputeDueInput(BaseModel):
    start: datetime
    spec: DeadlineSpec


class CaseFields(BaseModel):
    """Read-model columns an event changes on the case row; None leaves a column as it is."""

    stage: Stage | None = None
    callback_due_at: datetime | None = None
    callback_due_provisional: bool | None = None
    overdue: bool | None = None
    verdict: Verdict | None = None
    closed_at: datetime | None = None


class RecordEventInput(BaseModel):
    """One timeline entry, written once however often the activity is retried (event_key is unique per case)."""

    case_id: int
    event_key: str
    stage: Stage
    action: str
    actor: str
    at: datetime
    data: dict[str, Any] = Field(default_factory=dict)
    case_fields: CaseFields = Field(default_factory=CaseFields)


class OverdueNoticeInput(BaseModel):
    case_id: int
    stage: Stage
    deadline: Literal["callback"]
    due_at: datetime


class FeedbackNoticeInput(BaseModel):
    """The feedback message is the unit's text, already in the history through the feedback update."""

    case_id: int
    message: str
    round: int = 1


class NoticeResult(BaseModel):
    """What a notification activity did: who was addressed (user ids or 'rater'), and whether mail went out."""

    sent: bool
    recipients: list[str] = Field(default_factory=list)
    reason: str = ""


def workflow_id_for_rating(rating_id: int) -> str:
    """The case workflow id. Derived from the rating so a retried start can never open a second case."""
    return f"case-rating-{rating_id}"


__all__ = [
    "ActivityName",
    "Actor",
    "ErrorType",
    "AcceptInput",
    "CallbackInput",
    "CaseFields",
    "CaseSnapshot",
    "CaseWorkflowInput",
    "ComputeDueInput",
    "DueDate",
    "ExplanationInput",
    "FeedbackInput",
    "FeedbackNoticeInput",
    "NoticeResult",
    "OverdueNoticeInput",
    "RecordEventInput",
    "RectificationInput",
    "RectificationMode",
    "Stage",
    "TRANSITIONS",
    "Verdict",
    "VerificationInput",
    "workflow_id_for_rating",
]


class ActivityName:
    """Registered activity names. The workflow calls activities by name so it never imports SQLModel code."""

    COMPUTE_DUE = "compute_due"
    RECORD_CASE_EVENT = "record_case_event"
    NOTIFY_CALLBACK_OVERDUE = "notify_callback_overdue"
    SEND_RATER_FEEDBACK = "send_rater_feedback"


class ErrorType:
    """ApplicationError types a validator raises; the API maps them to HTTP statuses."""

    WRONG_STAGE = "WrongStage"  # → 409
    NOT_ALLOWED = "NotAllowed"  # → 403
    INVALID_INPUT = "InvalidInput"  # → 422
