"""Deadline clocks: when a running deadline reminds, falls due and escalates. Pure and deterministic.

A clock is armed with a due timestamp (computed on the working-day calendar by an activity). Its
events come in this order: each reminder (natural time before due), then each escalation rung
(rung 1 at due + its delay, rung 2 at due + its delay, ...). Extending a deadline re-arms the clock:
reminders already in the past are skipped and the ladder starts again from rung 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from models.case.vocabulary import DeadlineView
from models.policy import DeadlineName, DeadlineRule, EscalationRung

ClockEvent = Literal["reminder", "escalation"]


@dataclass
class Clock:
    name: DeadlineName
    round: int
    started_at: datetime
    due_at: datetime
    provisional: bool
    rule: DeadlineRule
    ladder: list[EscalationRung]
    reminders_sent: int = 0
    rung: int = 0
    arm: int = 1  # how many times armed; part of notification keys so a re-armed clock notifies again
    extended: bool = False
    state: str = "running"
    reminders: list[timedelta] = field(init=False)

    def __post_init__(self) -> None:
        self.reminders = [spec.as_timedelta() for spec in self.rule.remind_before]

    def next_event(self) -> tuple[datetime, ClockEvent] | None:
        """The next reminder or escalation this clock will fire, if any."""
        if self.state != "running" and self.state != "overdue":
            return None
        if self.reminders_sent < len(self.reminders):
            return self.due_at - self.reminders[self.reminders_sent], "reminder"
        if self.rung < len(self.ladder):
            delay = self.ladder[self.rung].after_overdue
            return self.due_at + (delay.as_timedelta() if delay else timedelta(0)), "escalation"
        return None

    def skip_past_reminders(self, now: datetime) -> None:
        """Reminders whose moment has passed (a late start or an extension) are not sent late."""
        while self.reminders_sent < len(self.reminders) and self.due_at - self.reminders[self.reminders_sent] <= now:
            self.reminders_sent += 1

    def rearm(self, due_at: datetime, now: datetime) -> None:
        self.due_at = due_at
        self.provisional = False
        self.extended = True
        self.reminders_sent = 0
        self.rung = 0
        self.arm += 1
        self.state = "running"
        self.skip_past_reminders(now)

    def stop(self, now: datetime, state: str | None = None) -> None:
        """Stop the clock: met (in time), met_late, or the given state (cancelled, replaced)."""
        self.state = state or ("met" if now <= self.due_at else "met_late")

    @property
    def overdue(self) -> bool:
        return self.state == "overdue"

    def view(self) -> DeadlineView:
        return DeadlineView(
            name=self.name,
            started_at=self.started_at,
            due_at=self.due_at,
            provisional=self.provisional,
            state=self.state,
            rung=self.rung,
            extended=self.extended,
        )
