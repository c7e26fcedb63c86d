"""A case's deadlines as 表10 reports them: 承诺时限, 延期时限 and 延期原因, and 超期天数 in working days.

Pure functions of the case row's deadlines (the current round's clocks, models/case/vocabulary.py
DeadlineView) and its timeline. A clock's stop time is not stored with it, so it is read from the
timeline: the first event after the due time that stops that clock in the workflow (STOP_ACTIONS,
which mirrors workflows/case: unit_steps, review_steps, workflow._deliver_feedback, reassign).

超期天数 counts working days, on the same calendar the deadlines were computed on (models/calendar.py:
the years an administrator loaded, then the State Council table, then weekends only): the deadlines
are set in working days (国办发〔2019〕51号 and the profiles: "N 个工作日"), so a weekend or a holiday
inside an overrun makes no case later. A working day on which any deadline of the round was past due,
even for part of it, counts once; days when two deadlines were overdue at the same time count once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.case.records import CaseEvent
from models.case.vocabulary import DeadlineView
from models.deadlines import CHINA_TZ, WorkdayCalendar, compute_due
from models.policy import DeadlineName, PolicyProfile

_EVERY_CLOCK = frozenset({"reassigned"})  # 改派 cancels every running clock of the round
STOP_ACTIONS: dict[DeadlineName, frozenset[str]] = {
    DeadlineName.CALLBACK: frozenset({"callback", "verified"}) | _EVERY_CLOCK,
    DeadlineName.VERIFICATION: frozenset({"verified"}) | _EVERY_CLOCK,
    DeadlineName.RECTIFICATION_IMMEDIATE: frozenset({"rectified", "ledgered", "cannot_rectify_approved"})
    | _EVERY_CLOCK,
    DeadlineName.RECTIFICATION_LEDGER_MAX: frozenset({"rectified", "cannot_rectify_approved"}) | _EVERY_CLOCK,
    DeadlineName.EXPLANATION: frozenset({"explained"}) | _EVERY_CLOCK,
    DeadlineName.FEEDBACK: frozenset({"feedback_written", "feedback_sent", "feedback_not_sent"}) | _EVERY_CLOCK,
    DeadlineName.APPEAL_DECISION: frozenset({"appeal_upheld", "appeal_rejected"}) | _EVERY_CLOCK,
}
_EXTENDING = ("deadline_extended", "extension_approved")


@dataclass(frozen=True)
class DeadlineTerms:
    """承诺时限, 延期时限 and 延期原因 of one deadline (the one 表10 reports for the case)."""

    deadline: DeadlineView
    promised: datetime  # the due time the rule (or the unit's 台账 date) set, before any extension
    extended_to: datetime | None
    reasons: list[str]


def overdue_end(deadline: DeadlineView, events: Sequence[CaseEvent], now: datetime) -> datetime | None:
    """Until when the deadline was past due: its stop, or `now` while it runs; None if it never was."""
    if deadline.state in ("running", "overdue"):
        return now if now > deadline.due_at else None
    # A cancelled or replaced clock was overdue only if a rung fired before it stopped.
    if deadline.state == "met" or (deadline.state in ("cancelled", "replaced") and deadline.rung == 0):
        return None
    stops = STOP_ACTIONS.get(deadline.name, _EVERY_CLOCK)
    stop = next((e.at for e in events if e.action in stops and e.at > deadline.due_at), None)
    return stop or now


def overdue_days(
    deadlines: Sequence[DeadlineView], events: Sequence[CaseEvent], now: datetime, calendar: WorkdayCalendar
) -> int:
    """超期天数: the working days on which at least one of the deadlines was past due (China time)."""
    days = set()
    for deadline in deadlines:
        end = overdue_end(deadline, events, now)
        if end is None or end <= deadline.due_at:
            continue
        day = deadline.due_at.astimezone(CHINA_TZ).date()
        last = end.astimezone(CHINA_TZ)
        # A day counts when (due, end] reaches into it: an end at exactly midnight does not reach the next day.
        last_day = (last - timedelta(microseconds=1)).date()
        while day <= last_day:
            if calendar.is_workday(day)[0]:
                days.add(day)
            day += timedelta(days=1)
    return len(days)


def reported_deadline(deadlines: Sequence[DeadlineView]) -> DeadlineView | None:
    """The deadline 表10 reports: the last one extended in the round, else the stage's running one due last
    (核实 rather than 回访 while both run: when the stage must be done), else the one that ran last."""
    extended = [d for d in deadlines if d.extended]
    if extended:
        return extended[-1]
    running = [d for d in deadlines if d.state in ("running", "overdue")]
    if running:
        return max(running, key=lambda d: d.due_at)
    live = [d for d in deadlines if d.state not in ("cancelled", "replaced")]
    chosen = live or list(deadlines)
    return chosen[-1] if chosen else None


def deadline_terms(
    deadline: DeadlineView, events: Sequence[CaseEvent], profile: PolicyProfile | None, calendar: WorkdayCalendar
) -> DeadlineTerms:
    """The promised due time, and for an extended deadline where it was moved to and why.

    An extension leaves only the new due time on the clock, so the promised one is computed again:
    the 台账 date the unit set (its `ledgered` step), or the pinned profile's rule from the clock's start.
    """
    mine = [e for e in events if e.data.get("deadline") == deadline.name.value and e.at >= deadline.started_at]
    if not deadline.extended:
        return DeadlineTerms(deadline, deadline.due_at, None, [])
    promised = deadline.due_at
    if deadline.name == DeadlineName.RECTIFICATION_LEDGER_MAX:
        ledgered = next((e for e in events if e.action == "ledgered" and e.at >= deadline.started_at), None)
        if ledgered is not None:
            promised = datetime.fromisoformat(str(ledgered.data["due_at"]))
    elif profile is not None:
        promised = compute_due(deadline.started_at, profile.deadline(deadline.name).within, calendar).at
    return DeadlineTerms(deadline, promised, deadline.due_at, _extension_reasons(mine))


def _extension_reasons(events: Sequence[CaseEvent]) -> list[str]:
    """Why it moved: a supervisor's own extension gives its reason; an approved request the unit's reason."""
    reasons, asked = [], ""
    for event in events:
        if event.action == "extension_requested":
            asked = str(event.data.get("reason", ""))
        elif event.action in _EXTENDING:
            reason = str(event.data.get("reason", "")) if event.action == "deadline_extended" else asked
            if reason and reason not in reasons:
                reasons.append(reason)
    return reasons
