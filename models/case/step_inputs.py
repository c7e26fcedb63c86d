"""The human steps of a case. Each *Fields model is an HTTP request body; each *Input adds who acts.

Pure pydantic (imported by the workflow). Field rules here reach the caller as 422 before the
workflow sees anything (unknown fields too); stage and role rules live in the workflow's update
validators. Each *Input carries `expires_at`: the validator refuses a step that reaches the
workflow after it, so an HTTP call that gave up waiting can say for certain the step was not taken.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, Field, model_validator

from models.case.vocabulary import Actor, Judgement, Verdict
from models.policy import DeadlineName
from models.request_body import RequestBody

_TEXT = 8000


def _zoned(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a timezone, e.g. 2026-12-01T18:00:00+08:00")
    return value


# A moment a person sets: without a timezone it would mean a different instant to every server.
ZonedDatetime = Annotated[datetime, AfterValidator(_zoned)]


class AcceptFields(RequestBody):
    """签收."""

    note: str = Field(default="", max_length=2000)


class CallbackFields(RequestBody):
    """One callback attempt (回访): whether the rater was reached, and what was said."""

    reached: bool
    note: str = Field(min_length=1, max_length=4000)


# Which judgements of the review (合理 / 部分合理 / 不合理) each verdict may carry: only a reasonable
# or partly reasonable review is rectified; an unreasonable one is explained or appealed.
JUDGEMENTS_OF_VERDICT: dict[Verdict, frozenset[Judgement]] = {
    Verdict.VALID: frozenset({Judgement.REASONABLE, Judgement.PARTLY_REASONABLE}),
    Verdict.NO_LEGAL_BASIS: frozenset({Judgement.UNREASONABLE}),
    Verdict.DISPUTED: frozenset({Judgement.UNREASONABLE}),
}
_DISAGREEMENT = {
    Verdict.VALID: (
        "a review found valid (情况属实, rectified) is judged 'reasonable' (合理) or 'partly_reasonable' (部分合理); "
        "if the review is unreasonable (不合理), give verdict 'no_legal_basis' (explain) or 'disputed' (appeal)"
    ),
    Verdict.NO_LEGAL_BASIS: (
        "a complaint without legal basis (诉求无政策依据, explained) is judged 'unreasonable' (不合理); "
        "a reasonable or partly reasonable review (合理 / 部分合理) is rectified: give verdict 'valid'"
    ),
    Verdict.DISPUTED: (
        "a mistaken or malicious review (误评或恶意差评, appealed) is judged 'unreasonable' (不合理); "
        "a reasonable or partly reasonable review (合理 / 部分合理) is rectified: give verdict 'valid'"
    ),
}


class VerificationFields(RequestBody):
    """核实结论, with the unit's judgement of the review (合理 / 部分合理 / 不合理) and its evidence."""

    verdict: Verdict
    findings: str = Field(min_length=1, max_length=_TEXT)
    judgement: Judgement
    # Descriptions or document references supporting the judgement.
    evidence: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _judgement_agrees(self) -> Self:
        # The judgement may be absent only in VerificationInput (histories recorded before it existed).
        judgement: Judgement | None = self.judgement
        if judgement is not None and judgement not in JUDGEMENTS_OF_VERDICT[self.verdict]:
            raise ValueError(
                f"judgement '{judgement.value}' does not agree with verdict '{self.verdict.value}': "
                f"{_DISAGREEMENT[self.verdict]}"
            )
        return self


class LedgerFields(RequestBody):
    """列入台账: a complex problem gets a due date, no later than the profile allows."""

    due_at: ZonedDatetime
    plan: str = Field(min_length=1, max_length=_TEXT)


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
    new_due_at: ZonedDatetime
    reason: str = Field(min_length=1, max_length=4000)


class ExtensionDecisionFields(RequestBody):
    """延期审批."""

    approve: bool
    note: str = Field(default="", max_length=4000)


class CannotRectifyRequestFields(RequestBody):
    """无法整改申请: why the problem cannot be rectified (for the supervisor), and what the rater will be told."""

    reasons: str = Field(min_length=1, max_length=_TEXT)
    explanation: str = Field(min_length=1, max_length=_TEXT, description="the explanation fed back to the rater")


class CannotRectifyDecisionFields(RequestBody):
    """无法整改审批: approved → the case closes as cannot-rectify and the rater gets the explanation."""

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
    # Optional here, required in the HTTP body: verification updates recorded before the judgement
    # existed (tests/histories) carry none and must keep replaying.
    judgement: Judgement | None = None  # type: ignore[assignment]
    evidence: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(default_factory=list, max_length=20)


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


class CannotRectifyRequestInput(CannotRectifyRequestFields, StepInput):
    pass


class CannotRectifyDecisionInput(CannotRectifyDecisionFields, StepInput):
    pass
