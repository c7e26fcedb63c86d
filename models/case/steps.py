"""Every human step of a case (办理步骤), in one table: the single source for routes, permissions and forms.

A step is taken by a person through `POST /api/v1/cases/{id}/<name>`; the API builds that route, its
request body and its permission check from this table (api/cases/actions.py), the authorization
matrix test derives who may call each route from it, and `steps_open_to` answers "which steps may
this person take on this case now" for pages. The workflow's update validators still have the last
word (the stage may have moved since the page was drawn); `tests/test_steps.py` checks that each
step names a real Update whose input is the step's input model.

Adding a step: docs/adding-a-step.md.

Pure data: imported by the workflow sandbox, so no SQLModel and no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models.case import step_inputs as inputs
from models.case.vocabulary import REASSIGNABLE_STAGES, TERMINAL_STAGES, Stage
from models.request_body import RequestBody
from models.roles import Role


class Relation(StrEnum):
    """How the person stands to the case, which decides the steps they may take."""

    HANDLES = "handles"  # staff of the unit the case is assigned to (承办单位)
    SUPERVISES = "supervises"  # supervisor of an office above that unit (督办)
    REVIEWS = "reviews"  # reviewer of an office above that unit (复核)


@dataclass(frozen=True)
class CaseStep:
    name: str  # also the HTTP path segment: POST /api/v1/cases/{id}/<name>
    label: str  # what the person sees (zh-CN)
    fields: type[RequestBody]  # the request body
    workflow_input: type[inputs.StepInput]  # fields + who acts + until when
    update: str  # the CaseWorkflow Update that takes it
    relation: Relation  # who may take it
    stages: frozenset[Stage] | None  # where the case must stand; None: any stage but the last
    records: tuple[str, ...]  # the timeline actions it may record when taken
    notice: str | None = None  # the notice it sends (models/case/activity_io.py NoticeKind), if any
    confirm: bool = False  # irreversible: a page asks before sending

    @property
    def role(self) -> Role:
        return _ROLE_OF[self.relation]

    def open_in(self, stage: Stage) -> bool:
        """Whether the case's stage lets the step be taken (before the workflow's finer checks)."""
        return stage not in TERMINAL_STAGES and (self.stages is None or stage in self.stages)


_ROLE_OF = {Relation.HANDLES: Role.UNIT_STAFF, Relation.SUPERVISES: Role.SUPERVISOR, Relation.REVIEWS: Role.REVIEWER}
_ANY_OPEN = None


def _only(*stages: Stage) -> frozenset[Stage]:
    return frozenset(stages)


STEPS: tuple[CaseStep, ...] = (
    # ---- the responsible unit (承办单位) ----
    CaseStep(
        "accept", "签收", inputs.AcceptFields, inputs.AcceptInput, "accept",
        Relation.HANDLES, _only(Stage.ASSIGNED), ("accepted",),
    ),
    CaseStep(
        "callbacks", "记录一次回访", inputs.CallbackFields, inputs.CallbackInput, "log_callback",
        Relation.HANDLES, _only(Stage.VERIFICATION), ("callback",),
    ),
    CaseStep(
        "verification", "核实结论", inputs.VerificationFields, inputs.VerificationInput, "verify",
        Relation.HANDLES, _only(Stage.VERIFICATION), ("verified",), confirm=True,
    ),
    CaseStep(
        "ledger", "列入台账（设定整改期限）", inputs.LedgerFields, inputs.LedgerInput, "ledger",
        Relation.HANDLES, _only(Stage.RECTIFICATION), ("ledgered",),
    ),
    CaseStep(
        "rectification", "整改完成", inputs.RectificationFields, inputs.RectificationInput, "rectify",
        Relation.HANDLES, _only(Stage.RECTIFICATION), ("rectified",), confirm=True,
    ),
    CaseStep(
        "explanation", "解释说明", inputs.ExplanationFields, inputs.ExplanationInput, "explain",
        Relation.HANDLES, _only(Stage.EXPLANATION), ("explained",), confirm=True,
    ),
    CaseStep(
        "appeal", "提出申诉", inputs.AppealFields, inputs.AppealInput, "file_appeal",
        Relation.HANDLES, _only(Stage.APPEAL_FILING), ("appeal_filed",), notice="appeal_filed", confirm=True,
    ),
    CaseStep(
        "feedback", "反馈评价人", inputs.FeedbackFields, inputs.FeedbackInput, "give_feedback",
        Relation.HANDLES, _only(Stage.FEEDBACK), ("feedback_written",), notice="feedback", confirm=True,
    ),
    CaseStep(
        "extension-requests", "申请延期", inputs.ExtensionRequestFields, inputs.ExtensionRequestInput,
        "request_extension", Relation.HANDLES, _ANY_OPEN, ("extension_requested",), notice="extension_requested",
    ),
    CaseStep(
        "cannot-rectify-requests", "申请认定无法整改", inputs.CannotRectifyRequestFields,
        inputs.CannotRectifyRequestInput, "request_cannot_rectify", Relation.HANDLES, _only(Stage.RECTIFICATION),
        ("cannot_rectify_requested",), notice="cannot_rectify_requested",
    ),
    # ---- supervisors (督办) ----
    CaseStep(
        "extension-decision", "审批延期申请", inputs.ExtensionDecisionFields, inputs.ExtensionDecisionInput,
        "decide_extension", Relation.SUPERVISES, _ANY_OPEN, ("extension_approved", "extension_refused"),
    ),
    CaseStep(
        "deadline-extension", "督办延期", inputs.ExtendFields, inputs.ExtendInput, "extend_deadline",
        Relation.SUPERVISES, _ANY_OPEN, ("deadline_extended",),
    ),
    CaseStep(
        "reminders", "督办提醒", inputs.RemindFields, inputs.RemindInput, "remind",
        Relation.SUPERVISES, _ANY_OPEN, ("supervisor_reminded",), notice="supervisor_reminder",
    ),
    CaseStep(
        "reassignment", "改派", inputs.ReassignFields, inputs.ReassignInput, "reassign",
        Relation.SUPERVISES, REASSIGNABLE_STAGES, ("reassigned",), notice="reassigned", confirm=True,
    ),
    CaseStep(
        "instructions", "批示", inputs.InstructionFields, inputs.InstructionInput, "instruct",
        Relation.SUPERVISES, _ANY_OPEN, ("instructed",), notice="instruction",
    ),
    CaseStep(
        "cannot-rectify-decision", "审批无法整改申请", inputs.CannotRectifyDecisionFields,
        inputs.CannotRectifyDecisionInput, "decide_cannot_rectify", Relation.SUPERVISES, _only(Stage.RECTIFICATION),
        ("cannot_rectify_approved", "cannot_rectify_refused"), notice="cannot_rectify", confirm=True,
    ),
    # ---- reviewers (复核) ----
    CaseStep(
        "appeal-decision", "复核决定", inputs.AppealDecisionFields, inputs.AppealDecisionInput, "decide_appeal",
        Relation.REVIEWS, _only(Stage.APPEAL_REVIEW), ("appeal_upheld", "appeal_rejected"), notice="not_adopted", confirm=True,
    ),
)  # fmt: skip

STEPS_BY_NAME = {step.name: step for step in STEPS}


def steps_open_to(relations: set[Relation], stage: Stage) -> list[CaseStep]:
    """The steps a person standing to the case in these relations may take in this stage, in table order."""
    return [step for step in STEPS if step.relation in relations and step.open_in(stage)]
