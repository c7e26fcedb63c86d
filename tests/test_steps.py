"""The step table (models/case/steps.py) is the one source: every row is a real Update and a real route."""

from __future__ import annotations

import inspect
import typing

import pytest
from temporalio import workflow

from api.app import create_app
from models.case.steps import STEPS, STEPS_BY_NAME, CaseStep, Relation, steps_open_to
from models.case.vocabulary import TERMINAL_STAGES, Stage
from tests.test_authorization_matrix import api_routes
from workflows.case import CaseWorkflow

_DEFINITION = workflow._Definition.from_class(CaseWorkflow)
assert _DEFINITION is not None
UPDATES = _DEFINITION.updates  # what the worker registers


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_each_step_is_an_update_taking_its_input(step: CaseStep) -> None:
    assert step.update in UPDATES, f"{step.update} is not an Update of CaseWorkflow"
    handler = getattr(CaseWorkflow, step.update)
    assert UPDATES[step.update].validator is not None, f"{step.update} has no validator"
    hints = typing.get_type_hints(handler)
    [parameter] = [p for p in inspect.signature(handler).parameters if p != "self"]
    assert hints[parameter] is step.workflow_input
    assert set(step.workflow_input.model_fields) == {*step.fields.model_fields, "actor", "expires_at"}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_step_has_its_route_and_no_route_lacks_a_step(backend: str) -> None:
    routes = {path for method, path in api_routes(create_app()) if method == "POST"}
    step_routes = {path.rsplit("/", 1)[1] for path in routes if path.startswith("/api/v1/cases/{case_id}/")}
    assert step_routes - {"reveal"} == set(STEPS_BY_NAME)


def test_which_steps_a_person_may_take_now() -> None:
    assert [s.name for s in steps_open_to({Relation.HANDLES}, Stage.ASSIGNED)] == ["accept", "extension-requests"]
    assert [s.name for s in steps_open_to({Relation.HANDLES}, Stage.VERIFICATION)] == [
        "callbacks",
        "verification",
        "extension-requests",
    ]
    assert [s.name for s in steps_open_to({Relation.REVIEWS}, Stage.APPEAL_REVIEW)] == ["appeal-decision"]
    assert "reassignment" not in [s.name for s in steps_open_to({Relation.SUPERVISES}, Stage.APPEAL_REVIEW)]
    for stage in TERMINAL_STAGES:
        assert steps_open_to(set(Relation), stage) == []
