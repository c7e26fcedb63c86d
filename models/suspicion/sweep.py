"""The periodic sweep (`python -m runtime.sweep_suspicious`): every detector over the recent ratings.

It runs the patterns that need many ratings at once (a staff member's usual rate, a source system's
fixed offsets), and the intake's own patterns again over every key busy enough, so a check lost
after an intake's commit is made here. Flags are raised one pattern per transaction, and raising is
idempotent: a sweep run twice, or over ratings intake has flagged, adds nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import utcnow
from models.suspicion.aggregates import channel_mismatches, constant_offset, staff_rate
from models.suspicion.flags import Finding, Outcome, raise_flag
from models.suspicion.in_force import default_rules, rules_in_use, unit_rules
from models.suspicion.patterns import COUNT_PATTERNS, FP, CountPattern, busy_keys, find
from models.suspicion.rules import SuspicionRules

# How far back a sweep looks for the end of a pattern; a sweep at least daily misses none.
DEFAULT_LOOKBACK = timedelta(days=1)


@dataclass
class SweepReport:
    opened: Counter[str] = field(default_factory=Counter)  # by detector
    joined: Counter[str] = field(default_factory=Counter)

    def summary_zh(self) -> str:
        return f"新增可疑评价标记 {sum(self.opened.values())} 条，已有标记新增评价 {sum(self.joined.values())} 处"


class _UnitRules:
    """Each unit's thresholds, looked up once per sweep."""

    def __init__(self, session: AsyncSession) -> None:
        self.session, self.known = session, dict[int, SuspicionRules]()

    async def __call__(self, unit_id: int) -> SuspicionRules:
        if unit_id not in self.known:
            self.known[unit_id] = await unit_rules(self.session, unit_id)
        return self.known[unit_id]


async def sweep(
    session: AsyncSession, now: datetime | None = None, lookback: timedelta = DEFAULT_LOOKBACK
) -> SweepReport:
    """Find every pattern that ended in the last `lookback` and raise or join its flag."""
    now = now or utcnow()
    across, in_use, rules_for = await default_rules(session), await rules_in_use(session), _UnitRules(session)
    findings: list[Finding] = []
    for pattern in COUNT_PATTERNS:
        findings += await _count_pattern(session, pattern, across, in_use, rules_for, now, lookback)
    findings += await staff_rate(session, rules_for, in_use, now)
    findings += await constant_offset(session, across, now)
    findings += await channel_mismatches(session, rules_for, in_use, now - lookback, now)
    report = SweepReport()
    for finding in findings:
        outcome = await raise_flag(session, finding)
        if outcome == Outcome.OPENED:
            report.opened[finding.detector.value] += 1
        elif outcome == Outcome.JOINED:
            report.joined[finding.detector.value] += 1
    return report


async def _count_pattern(
    session: AsyncSession, pattern: CountPattern, across: SuspicionRules, in_use: list[SuspicionRules],
    rules_for: _UnitRules, now: datetime, lookback: timedelta,
) -> list[Finding]:  # fmt: skip
    """Keys busy enough under the loosest thresholds in use, each judged by the thresholds that apply to it."""
    candidates = [across] if pattern.across_units else in_use
    loosest = min(candidates, key=lambda r: pattern.rule(r).ratings)
    since = now - lookback - max(pattern.rule(r).window for r in candidates)
    findings = []
    for values in await busy_keys(session, pattern, loosest, since, now):
        rules = across if pattern.across_units else await rules_for(await _unit_of(session, pattern, values))
        if (found := await find(session, pattern, rules, values, since, now)) is not None:
            findings.append(found)
    return findings


async def _unit_of(session: AsyncSession, pattern: CountPattern, values: tuple[Any, ...]) -> int:
    """The unit of a unit-bound pattern's ratings (a staff member's, or the one a rater reviewed)."""
    conditions = [column == value for column, value in zip(pattern.keys, values, strict=True)]
    return (await session.exec(select(FP.unit_id).where(*conditions).limit(1))).one()
