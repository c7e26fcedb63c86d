"""The case's vocabulary, shared by the workflow, its activities and the API.

This module is imported inside the Temporal workflow sandbox, so it holds pure pydantic types
only: no SQLModel, no I/O. None of these types carries a rater's name, phone number or email;
the workflow sees ids, levels, codes and timestamps (docs/security.md, "Rater PII").
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from models.policy import DeadlineName, PinnedPolicy
from models.roles import Role


class Stage(StrEnum):
    """Where a bad-review case stands (办理阶段)."""

    ASSIGNED = "assigned"  # 已交办: waiting for the unit to accept (签收)
    VERIFICATION = "verification"  # 核实回访: verify the facts and call the rater back
    RECTIFICATION = "rectification"  # 整改 (立行立改 or 台账)
    EXPLANATION = "explanation"  # 解释说明: the complaint has no legal basis
    APPEAL_FILING = "appeal_filing"  # 申诉: the unit believes the review mistaken or malicious
    APPEAL_REVIEW = "appeal_review"  # 复核: a reviewer decides the appeal
    FEEDBACK = "feedback"  # 反馈: tell the rater the result
    RATER_RESPONSE = "rater_response"  # 评价人确认: the rater says whether the result is enough
    CLOSED = "closed"  # 办结
    NOT_ADOPTED = "not_adopted"  # 不予采纳: appeal upheld, the review leaves the statistics


# The whole state machine: a stage may only move to one of these. Reassignment (改派) and
# reopening (重新交办) go back to ASSIGNED; the appeal either ends the case or returns to rectification.
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.ASSIGNED: frozenset({Stage.VERIFICATION, Stage.ASSIGNED}),
    Stage.VERIFICATION: frozenset({Stage.RECTIFICATION, Stage.EXPLANATION, Stage.APPEAL_FILING, Stage.ASSIGNED}),
    Stage.RECTIFICATION: frozenset({Stage.FEEDBACK, Stage.ASSIGNED, Stage.CLOSED}),  # CLOSED: 无法整改 approved
    Stage.EXPLANATION: frozenset({Stage.FEEDBACK, Stage.ASSIGNED}),
    Stage.APPEAL_FILING: frozenset({Stage.APPEAL_REVIEW, Stage.RECTIFICATION, Stage.ASSIGNED}),
    Stage.APPEAL_REVIEW: frozenset({Stage.NOT_ADOPTED, Stage.RECTIFICATION}),
    Stage.FEEDBACK: frozenset({Stage.RATER_RESPONSE, Stage.CLOSED, Stage.ASSIGNED}),
    Stage.RATER_RESPONSE: frozenset({Stage.CLOSED, Stage.ASSIGNED}),
    Stage.CLOSED: frozenset(),
    Stage.NOT_ADOPTED: frozenset(),
}
TERMINAL_STAGES = frozenset({Stage.CLOSED, Stage.NOT_ADOPTED})
# Stages in which the unit still works the case, so a supervisor may reassign it.
REASSIGNABLE_STAGES = frozenset(
    {Stage.ASSIGNED, Stage.VERIFICATION, Stage.RECTIFICATION, Stage.EXPLANATION, Stage.APPEAL_FILING, Stage.FEEDBACK}
)

STAGE_LABELS_ZH: dict[Stage, str] = {
    Stage.ASSIGNED: "已交办",
    Stage.VERIFICATION: "核实回访",
    Stage.RECTIFICATION: "整改",
    Stage.EXPLANATION: "解释说明",
    Stage.APPEAL_FILING: "申诉",
    Stage.APPEAL_REVIEW: "申诉复核",
    Stage.FEEDBACK: "反馈",
    Stage.RATER_RESPONSE: "评价人确认",
    Stage.CLOSED: "办结",
    Stage.NOT_ADOPTED: "不予采纳",
}

DEADLINE_LABELS_ZH: dict[DeadlineName, str] = {
    DeadlineName.CALLBACK: "回访",
    DeadlineName.VERIFICATION: "核实",
    DeadlineName.RECTIFICATION_IMMEDIATE: "立行立改",
    DeadlineName.RECTIFICATION_LEDGER_MAX: "台账整改",
    DeadlineName.EXPLANATION: "解释说明",
    DeadlineName.FEEDBACK: "反馈",
    DeadlineName.RATER_RESPONSE: "评价人确认",
    DeadlineName.APPEAL_FILING: "申诉提交",
    DeadlineName.APPEAL_DECISION: "申诉复核",
}


class Verdict(StrEnum):
    """The unit's verification verdict (核实结论)."""

    VALID = "valid"  # 情况属实: rectify
    NO_LEGAL_BASIS = "no_legal_basis"  # 诉求无政策依据: explain
    DISPUTED = "disputed"  # 误评或恶意差评: appeal


class Judgement(StrEnum):
    """The unit's judgement of the review itself (差评研判), recorded beside the verdict.

    Only a reasonable or partly reasonable review is rectified (verdict `valid`); an unreasonable one
    is explained (`no_legal_basis`) or appealed (`disputed`).
    """

    REASONABLE = "reasonable"  # 合理
    PARTLY_REASONABLE = "partly_reasonable"  # 部分合理
    UNREASONABLE = "unreasonable"  # 不合理


JUDGEMENT_LABELS_ZH: dict[Judgement, str] = {
    Judgement.REASONABLE: "合理",
    Judgement.PARTLY_REASONABLE: "部分合理",
    Judgement.UNREASONABLE: "不合理",
}


class Outcome(StrEnum):
    """How a case ended (办理结果)."""

    SATISFIED = "satisfied"  # the rater said the result is enough
    SATISFIED_BY_SILENCE = "satisfied_by_silence"  # no answer in the window; the profile counts it satisfied
    UNSATISFIED = "unsatisfied"  # not satisfied after the last round; escalated
    NO_CONTACT = "no_contact"  # the rater left no way to be told (anonymous)
    NOT_ADOPTED = "not_adopted"  # appeal upheld
    CANNOT_RECTIFY = "cannot_rectify"  # 无法整改: a supervisor agreed it cannot be rectified; the rater was told why


class Actor(BaseModel):
    """Who asks the workflow to act: a user's id, role and unit (never a name). Raters have no id."""

    user_id: int | None = None
    role: Role | Literal["rater"]
    unit_id: int | None = None

    @property
    def label(self) -> str:
        return f"user:{self.user_id}" if self.user_id is not None else str(self.role)


RATER_ACTOR = Actor(role="rater")
SYSTEM_ACTOR = "system"


class RoundCarry(BaseModel):
    """What a reopened round (重新交办) starts from: the run before it ended by continuing as new."""

    round: int  # the round this run handles
    seq: int  # the last timeline event number written so far (event keys go on from it)


class CaseWorkflowInput(BaseModel):
    """Everything a case workflow starts from: ids, flags and the pinned policy. No PII.

    `carry` is set when a round after the first continues as a new run; `unit_id` is then the unit
    the case stands at.
    """

    case_id: int
    rating_id: int
    unit_id: int
    level: str
    real_name: bool
    rater_has_email: bool
    rater_has_phone: bool = False
    policy: PinnedPolicy
    carry: RoundCarry | None = None

    @property
    def rater_reachable(self) -> bool:
        return self.rater_has_email or self.rater_has_phone


class DeadlineView(BaseModel):
    """One running or finished deadline as the API and read model show it."""

    name: DeadlineName
    started_at: datetime
    due_at: datetime
    provisional: bool = False
    state: str = "running"  # running | met | overdue | met_late | cancelled
    rung: int = 0
    extended: bool = False


class CaseSnapshot(BaseModel):
    """The workflow's view of a case, returned by every update and by the state query."""

    case_id: int
    stage: Stage
    round: int = 1
    unit_id: int
    verdict: Verdict | None = None
    outcome: Outcome | None = None
    overdue: bool = False
    escalation_rung: int = 0
    callback_done: bool = False
    deadlines: list[DeadlineView] = Field(default_factory=list)
    pending_extension: DeadlineName | None = None
    pending_cannot_rectify: bool = False  # a 无法整改 request waits for a supervisor
    ledger_latest_due: datetime | None = None
    rater_answer: bool | None = None  # this round's answer (satisfied or not), once given

    def deadline(self, name: DeadlineName) -> DeadlineView | None:
        return next((d for d in reversed(self.deadlines) if d.name == name), None)


class ActivityName:
    """Registered activity names. The workflow calls activities by name so it never imports SQLModel code."""

    COMPUTE_DUE = "compute_due"
    COMPUTE_DUES = "compute_dues"
    RECORD_CASE_EVENT = "record_case_event"
    NOTIFY = "notify"
    SEND_RATER_FEEDBACK = "send_rater_feedback"


class ErrorType:
    """ApplicationError types a validator raises; the API maps them to HTTP statuses."""

    WRONG_STAGE = "WrongStage"  # → 409
    ALREADY_TAKEN = "AlreadyTaken"  # → 409: the same step was already taken (e.g. the rater answered)
    NOT_ALLOWED = "NotAllowed"  # → 403
    INVALID_INPUT = "InvalidInput"  # → 422
    EXPIRED = "Expired"  # → 503: reached the workflow after the caller stopped waiting; not taken


def workflow_id_for_rating(rating_id: int, prefix: str = "") -> str:
    """The case workflow id. Derived from the rating so a retried start can never open a second case.

    The prefix (settings.workflow_id_prefix) keeps deployments that share a Temporal namespace apart.
    """
    return f"{prefix}case-rating-{rating_id}"
