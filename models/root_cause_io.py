"""The root-cause rectification's vocabulary (根源整改), shared by its workflow, its activity and the API.

Imported inside the Temporal workflow sandbox: pure pydantic, no SQLModel, no I/O. Nothing here
carries a rater's name, phone or email: the workflow knows the cases by id, and the activity reads
who can be told from the database when the result is accepted (docs/root-cause.md).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from models.case.step_inputs import StepInput, ZonedDatetime
from models.case.vocabulary import Actor
from models.deadlines import DeadlineSpec
from models.policy import PinnedPolicy
from models.request_body import RequestBody

MAX_LINKED_CASES = 200
_TEXT = 8000


class RootCauseStage(StrEnum):
    """Where a root-cause rectification stands."""

    RECTIFYING = "rectifying"  # 整改中: the responsible unit works on the cause
    RESULT_SUBMITTED = "result_submitted"  # 待验收: the unit reported the result; a supervisor accepts or returns it
    ACCEPTED = "accepted"  # 已验收: the result was fed back to every rater who can be told
    WITHDRAWN = "withdrawn"  # 已撤销: a supervisor withdrew it; its cases may join another


ROOT_CAUSE_STAGE_LABELS_ZH: dict[RootCauseStage, str] = {
    RootCauseStage.RECTIFYING: "整改中",
    RootCauseStage.RESULT_SUBMITTED: "待验收",
    RootCauseStage.ACCEPTED: "已验收",
    RootCauseStage.WITHDRAWN: "已撤销",
}
OPEN_ROOT_CAUSE_STAGES = frozenset({RootCauseStage.RECTIFYING, RootCauseStage.RESULT_SUBMITTED})

# The notices a root-cause rectification causes; each kind's email is templates/email/<kind>.txt.j2.
RootCauseNoticeKind = Literal[
    "root_cause_opened",  # to the responsible unit: a rectification was assigned to it
    "root_cause_reminder",  # its deadline is near
    "root_cause_escalation",  # its deadline passed (rung 1, 2, ...)
    "root_cause_result_submitted",  # to the supervisors: a result waits for acceptance
    "root_cause_returned",  # to the unit: the result was returned
    "root_cause_withdrawn",  # to the unit: the supervisor withdrew it
]
RootCauseAudience = Literal["unit_staff", "supervisor", "management_office"]
# The rater's notice of an accepted result, one per linked case (templates/email|sms/root_cause_result.txt.j2).
ROOT_CAUSE_RESULT_NOTICE = "root_cause_result"


class RootCauseActivity:
    """Registered activity names (the deadline activity is the case workflow's own compute_due)."""

    RECORD = "record_root_cause_event"


class RootCauseWorkflowInput(BaseModel):
    """What the workflow starts from: ids, the deadline rule and the responsible unit's pinned policy. No PII."""

    rectification_id: int
    unit_id: int
    case_ids: list[int]
    within: DeadlineSpec
    policy: PinnedPolicy
    opened_by: Actor


class RootCauseSnapshot(BaseModel):
    """The workflow's view, returned by each step and by the state query."""

    rectification_id: int
    stage: RootCauseStage
    due_at: datetime | None = None
    overdue: bool = False
    escalation_rung: int = 0
    returned: int = Field(default=0, description="How many times a result was returned")


# ---- the human steps: *Fields is the HTTP body, *Input adds who acts and until when ----------------


class ProgressFields(RequestBody):
    """整改进展: what the unit has done so far."""

    note: str = Field(min_length=1, max_length=_TEXT)


class ResultFields(RequestBody):
    """整改结果: what was changed at the root; this text is what every rater is told once it is accepted."""

    result: str = Field(min_length=1, max_length=_TEXT, description="Fed back to every rater who can be told")
    measures: list[str] = Field(default_factory=list, max_length=50, description="Each measure taken, one per item")


class AcceptanceFields(RequestBody):
    """验收通过."""

    note: str = Field(default="", max_length=2000)


class ReturnFields(RequestBody):
    """退回整改: why, and (if the deadline has passed or should move) a new one."""

    reason: str = Field(min_length=1, max_length=2000)
    due_at: ZonedDatetime | None = Field(
        default=None, description="A new deadline; required when the current one has passed"
    )


class WithdrawalFields(RequestBody):
    """撤销: why the rectification is no longer pursued."""

    reason: str = Field(min_length=1, max_length=2000)


class ProgressInput(ProgressFields, StepInput):
    pass


class ResultInput(ResultFields, StepInput):
    pass


class AcceptanceInput(AcceptanceFields, StepInput):
    pass


class ReturnInput(ReturnFields, StepInput):
    pass


class WithdrawalInput(WithdrawalFields, StepInput):
    pass


# ---- the activity: one timeline event, with everything it changes ----------------------------------


class RootCauseNotice(BaseModel):
    """A notice to staff an event causes; the activity resolves the audience to people (never an address)."""

    kind: RootCauseNoticeKind
    audience: RootCauseAudience
    key: str
    due_at: datetime | None = None
    rung: int | None = None
    message: str = ""


class RootCauseEventInput(BaseModel):
    """One timeline event of a rectification, written once however often the activity is retried.

    With it, in the same transaction: the rectification row's new state, its staff notices, for a
    person's step its audit record, and for `accepted` the result on every linked case (a CaseEvent)
    with one notice to each rater who can be told.
    """

    rectification_id: int
    workflow_id: str
    event_key: str
    action: str
    actor: str
    actor_role: str = ""
    at: datetime
    stage: RootCauseStage
    due_at: datetime | None = None
    overdue: bool = False
    escalation_rung: int = 0
    data: dict[str, Any] = Field(default_factory=dict)
    notices: list[RootCauseNotice] = Field(default_factory=list)
    result: str | None = None  # set on `accepted`: what the raters are told


class RootCauseRecorded(BaseModel):
    """What the activity found: `stored` is False when no rectification row belongs to this workflow."""

    stored: bool
    written: bool = False
