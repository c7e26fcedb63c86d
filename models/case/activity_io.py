"""Inputs and results of the case workflow's activities: one model per call. No PII."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from models.case.vocabulary import DeadlineView, Outcome, Stage, Verdict
from models.deadlines import DeadlineSpec
from models.policy import DeadlineName


class ComputeDueInput(BaseModel):
    start: datetime
    spec: DeadlineSpec


class ComputeDuesInput(BaseModel):
    """Several working-day deadlines that start together: one look-up of the calendar for all."""

    start: datetime
    specs: list[DeadlineSpec]


class CaseFields(BaseModel):
    """Read-model columns an event changes on the case row; None leaves a column as it is."""

    stage: Stage | None = None
    round: int | None = None
    unit_id: int | None = None
    verdict: Verdict | None = None
    outcome: Outcome | None = None
    overdue: bool | None = None
    escalation_rung: int | None = None
    deadlines: list[DeadlineView] | None = None
    closed_at: datetime | None = None
    rating_adopted: bool | None = None


Audience = Literal["unit_staff", "supervisor", "management_office", "reviewers", "rater"]
NoticeKind = Literal[
    "feedback",  # the result, to the rater, with the answer link
    "cannot_rectify",  # to the rater: the problem cannot be rectified (无法整改, approved), and why
    "reminder",  # a deadline is near
    "escalation",  # a deadline passed (rung 1, 2, ...)
    "supervisor_reminder",  # 督办提醒 from a supervisor
    "instruction",  # 批示
    "reassigned",  # the case arrived at a unit after 改派
    "reopened",  # 重新交办
    "appeal_filed",  # reviewers have an appeal to decide
    "not_adopted",  # the management office learns of an upheld appeal
    "extension_requested",
    "cannot_rectify_requested",  # a supervisor has a 无法整改 request to decide
    "unsatisfied_final",  # the rater is still not satisfied after the last round
]


class NoticeRequest(BaseModel):
    """A notice a timeline event causes. The activity resolves the audience to people and channels.

    `key` names the notice within the case (kind, round, deadline arm...); the activity adds the case,
    the channel and the recipient, so the full key is unique across every case.
    """

    kind: NoticeKind
    audience: Audience
    key: str
    deadline: DeadlineName | None = None
    due_at: datetime | None = None
    rung: int | None = None
    message: str = ""
    respond_by: datetime | None = None  # the rater's answer window (feedback only)


class RecordEventInput(BaseModel):
    """One timeline entry, written once however often the activity is retried (event_key is unique per case).

    With it, in the same transaction: the case row's new state, the notices the event causes, and,
    for a person's step, its audit record (actor_role set) and the completion of the request that
    asked for it (update_id).
    """

    case_id: int
    event_key: str
    stage: Stage
    round: int
    action: str
    actor: str
    at: datetime
    data: dict[str, Any] = Field(default_factory=dict)
    case_fields: CaseFields = Field(default_factory=CaseFields)
    notices: list[NoticeRequest] = Field(default_factory=list)
    actor_role: str = ""
    update_id: str | None = None


class NotifyInput(BaseModel):
    """Mail an audience about a case. `key` makes the send idempotent (with the recipient)."""

    case_id: int
    kind: NoticeKind
    audience: Audience
    key: str
    stage: Stage
    round: int = 1
    deadline: DeadlineName | None = None
    due_at: datetime | None = None
    rung: int | None = None
    message: str = ""


class FeedbackNoticeInput(BaseModel):
    """Send the result to the rater with a one-time answer link valid until respond_by."""

    case_id: int
    round: int
    message: str
    respond_by: datetime | None = None


class NoticeResult(BaseModel):
    """What a notification activity did: who was addressed (user ids or 'rater'), and over which channels."""

    sent: bool
    recipients: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    reason: str = ""
