"""The human steps of a case. Each *Fields model is an HTTP request body; each *Input adds who acts.

Pure pydantic (imported by the workflow). Field rules here reach the caller as 422 before the
workflow sees anything (unknown fields too); stage and role rules live in the workflow's update
validators. Each *Input carries `expires_at`: the validator refuses a step that reaches the
workflow after it, so an HTTP call that gave up waiting can say for certain the step was not taken.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from models.case.vocabulary import Actor, Verdict
from models.policy import DeadlineName
from models.request_body import RequestBody

_TEXT = 8000


class AcceptFields(RequestBody):
    """签收."""

    note: str = Field(default="", max_length=2000)


class CallbackFields(RequestBody):
    """One callback attempt (回访): whether the rater was reached, and what was said."""

    reached: bool
    note: str = Field(min_length=1, max_length=4000)


class VerificationFields(RequestBody):
    """核实结论."""

    verdict: Verdict
    findings: str = Field(min_length=1, max_length=_TEXT)


class LedgerFields(RequestBody):
    """列入台账: a complex problem gets a due date, no later than the profile allows."""

    due_at: datetime
    plan: str = Field(min_length=1, max_length=_TEXT)

    @field_validator("due_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("due_at needs a timezone, e.g. 2026-12-01T18:00:00+08:00")
        return value


class RectificationFields(RequestBody):
    """整改完成: what was done."""

    measures: str = Field(min_length=1, max_length=_TEXT)


class ExplanationFields(RequestBody):
    """解释说明: why the complaint has no legal basis."""

    explanation: str = Field(min_length=1, max_length=_TEXT)


class AppealFields(RequestBody):
    """申诉: why the review is mistaken or malicious, with evidence (descriptions or document references)."""

    reason: str = Field(min_length=1, max_length=_TEXT)
    evidence: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(min_length=1, max_length=20)


class AppealDecisionFields(RequestBody):
    """复核决定: upheld → not adopted; rejected → back to rectification."""

    upheld: bool
    reason: str = Field(min_length=1, max_length=_TEXT)


class FeedbackFields(RequestBody):
    """The result told to the rater (反馈内容)."""

    message: str = Field(min_length=1, max_length=_TEXT)


class ExtensionRequestFields(RequestBody):
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


class ExtensionDecisionFields(RequestBody):
    """延期审批."""

    approve: bool
    note: str = Field(default="", max_length=4000)


class ExtendFields(ExtensionRequestFields):
    """督办延期: a supervisor moves a running deadline directly."""


class RemindFields(RequestBody):
    """督办提醒."""

    message: str = Field(default="", max_length=4000)


class ReassignFields(RequestBody):
    """改派: hand the case to another unit; the round starts again there."""

    to_unit_id: int = Field(ge=1, le=2_147_483_647)
    reason: str = Field(min_length=1, max_length=4000)


class InstructionFields(RequestBody):
    """批示."""

    instruction: str = Field(min_length=1, max_length=4000)


class RaterResponseFields(RequestBody):
    """The rater's answer to the feedback. Any comment stays in the database, not in the workflow."""

    satisfied: bool


class StepInput(BaseModel):
    """Who asks, and until when the request may still be taken (None: no limit, e.g. tests and the system)."""

    actor: Actor
    expires_at: datetime | None = None


class AcceptInput(AcceptFields, StepInput):
    pass


class CallbackInput(CallbackFields, StepInput):
    pass


class VerificationInput(VerificationFields, StepInput):
    pass


class LedgerInput(LedgerFields, StepInput):
    pass


class RectificationInput(RectificationFields, StepInput):
    pass


class ExplanationInput(ExplanationFields, StepInput):
    pass


class AppealInput(AppealFields, StepInput):
    pass


class AppealDecisionInput(AppealDecisionFields, StepInput):
    pass


class FeedbackInput(FeedbackFields, StepInput):
    pass


class ExtensionRequestInput(ExtensionRequestFields, StepInput):
    pass


class ExtensionDecisionInput(ExtensionDecisionFields, StepInput):
    pass


class ExtendInput(ExtendFields, StepInput):
    pass


class RemindInput(RemindFields, StepInput):
    pass


class ReassignInput(ReassignFields, StepInput):
    pass


class InstructionInput(InstructionFields, StepInput):
    pass


class RaterResponseInput(RaterResponseFields, StepInput):
    pass
