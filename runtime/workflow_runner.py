"""The sandbox the worker runs workflow code in.

Temporal's sandbox re-imports, for every workflow run it starts or brings back into its cache, each
module it does not pass through, and it is the case workflow's own modules (workflows/: class
definitions, constants, no module state) that cost the most: compiling and executing them took a
quarter of the worker's time while cases were being opened (py-spy, docs/measurements.md "Cases").
They are passed through, imported once. The runtime restrictions still apply to the code in them
(no clock, no random, no I/O from a workflow): the sandbox checks calls, not where a module came from.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Our workflow packages: pure definitions, safe to share between runs. Everything they import from
# models/ is passed through already (workflow.unsafe.imports_passed_through()).
PASSED_THROUGH = ("workflows",)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner with our workflow modules imported once, not per run."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH))
