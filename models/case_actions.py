"""The human steps of a case. Each *Fields model is an HTTP request body; each *Input adds who acts.

Pure pydantic (imported by the workflow). Field rules here reach the caller as 422 before the
workflow sees anything; stage and role rules live in the workflow's update validators.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from models.case_types import Actor, Verdict
from models.policy import DeadlineName

_TEXT = 8000


class AcceptFields(BaseModel):
    """签收."""

    note: str = Field(default="", max_length=2000)


class CallbackFields(BaseModel):
    """One callback attempt (回访): whether the rater was reached, and what was said."""

    reached: bool
    note: str = Field(min_length=1, max_length=4000)


class VerificationFields(BaseModel):
    """核实结论."""

    verdict: Verdict
    findings: str = Field(min_length=1, max_length=_TEXT)


class LedgerFields(BaseModel):
    """列入台账: a complex problem gets a due date, no later than the profile allows."""

    due_at: datetime
    plan: str = Field(min_length=1, max_length=_TEXT)

    @field_validator("due_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("due_at needs a timezone, e.g. 2026-12-01T18:00:00+08:00")
        return value


class RectificationFields(BaseModel):
    """整改完成: what was done."""

    measures: str = Field(min_length=1, max_length=_TEXT)


class ExplanationFields(BaseModel):
    """解释说明: why the complaint has no legal basis."""

    explanation: str = Field(min_length=1, max_length=_TEXT)


class AppealFields(BaseModel):
    """申诉: why the review is mistaken or malicious, with evidence (descriptions or document references)."""

    reason: str = Field(min_length=1, max_length=_TEXT)
    evidence: list[str] = Field(min_length=1, max_length=20)


class AppealDecisionFields(BaseModel):
    """复核决定: upheld → not adopted; rejected → back to rectification."""

    upheld: bool
    reason: str = Field(min_length=1, max_length=_TEXT)


class FeedbackFields(BaseModel):
    """The result told to the rater (反馈内容)."""

    message: str = Field(min_length=1, max_length=_TEXT)


class ExtensionRequestFields(BaseModel):
    """延期申请: the unit asks a supervisor for more time on a running deadline."""

    deadline: DeadlineName
    new_due_at: datetime
    reason: str = Field(min_length=1, max_length=4000)

    @field_validator("new_due_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("new_due_at needs a timezone, e.g. 2026-12-01T18:00:00+08:00")
        return value


class ExtensionDecisionFields(BaseModel):
    """延期审批."""

    approve: bool
    note: str = Field(default="", max_length=4000)


class ExtendFields(ExtensionRequestFields):
    """督办延期: a supervisor moves a running deadline directly."""


class RemindFields(BaseModel):
    """督办提醒."""

    message: str = Field(default="", max_length=4000)


class ReassignFields(BaseModel):
    """改派: hand the case to another unit; the round starts again there."""

    to_unit_id: int
    reason: str = Field(min_length=1, max_length=4000)


class InstructionFields(BaseModel):
    """批示."""

    instruction: str = Field(min_length=1, max_length=4000)


class RaterResponseFields(BaseModel):
    """The rater's answer to the feedback. Any comment stays in the database, not in the workflow."""

    satisfied: bool


class AcceptInput(AcceptFields):
    actor: Actor


class CallbackInput(CallbackFields):
    actor: Actor


class VerificationInput(VerificationFields):
    actor: Actor


class LedgerInput(LedgerFields):
    actor: Actor


class RectificationInput(RectificationFields):
    actor: Actor


class ExplanationInput(ExplanationFields):
    actor: Actor


class AppealInput(AppealFields):
    actor: Actor


class AppealDecisionInput(AppealDecisionFields):
    actor: Actor


class FeedbackInput(FeedbackFields):
    actor: Actor


class ExtensionRequestInput(ExtensionRequestFields):
    actor: Actor


class ExtensionDecisionInput(ExtensionDecisionFields):
    actor: Actor


class ExtendInput(ExtendFields):
    actor: Actor


class RemindInput(RemindFields):
    actor: Actor


class ReassignInput(ReassignFields):
    actor: Actor


class InstructionInput(InstructionFields):
    actor: Actor


class RaterResponseInput(RaterResponseFields):
    actor: Actor
