"""The case workflow (差评工单流程), one module per part: see workflows/case/workflow.py for the whole picture.

state.py      what the workflow holds and reports (the snapshot)
guards.py     who may act, in which stage, until when; one step at a time
timeline.py   every change to the database, with its notices and search attributes
board.py      the deadline board: clocks, reminders, escalation rungs
clock.py      one deadline's clock (pure)
rounds.py     starting a round, entering rectification
unit_steps.py, supervisor_steps.py, review_steps.py   the human steps (Updates with validators)
workflow.py   CaseWorkflow: the run loop and the automatic steps
"""

from workflows.case.workflow import CaseWorkflow

__all__ = ["CaseWorkflow"]
