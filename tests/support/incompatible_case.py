"""A deliberately incompatible CaseWorkflow, registered under the same name, for the replay gate's tests.

In a module of its own: the workflow sandbox re-imports the module a workflow class is defined in.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.case.vocabulary import CaseSnapshot, CaseWorkflowInput
    from workflows.case import CaseWorkflow


@workflow.defn(name="CaseWorkflow")
class CaseWorkflowWithAnExtraActivity(CaseWorkflow):
    """An incompatible change: a new activity before everything a case did so far."""

    @workflow.run
    async def run(self, inp: CaseWorkflowInput) -> CaseSnapshot:
        await workflow.execute_activity("check_unit_exists", inp.unit_id, start_to_close_timeout=timedelta(minutes=1))
        return await super().run(inp)
