"""The figures an operator watches, read from the database for /metrics (api/metrics.py).

Four small grouped counts, each on an indexed column and over the rows that are still in play (open
cases, notices and pushes not yet delivered), so their cost follows the backlog, not the history:
closed cases, sent notices and delivered pushes are never counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case
from models.case.vocabulary import TERMINAL_STAGES, Stage
from models.notifications import NoticeStatus, Notification
from models.upstream import PushStatus, UpstreamPush

OPEN_STAGES = [stage for stage in Stage if stage not in TERMINAL_STAGES]
# Rungs always reported (0 when none), so an alert on a rung has a series before the first case reaches it.
REPORTED_RUNGS = (0, 1, 2)
# A notice or push in play is in one of these states; "retrying" is a pending one that failed before.
NOTICE_STATES = ("waiting", "retrying", "sending", "failed")
PUSH_STATES = ("waiting", "retrying", "sending", "dead")


@dataclass(frozen=True)
class OperationsFigures:
    """Counts of what is in play at `read_at`."""

    read_at: datetime
    open_cases: dict[str, int]  # stage -> open cases
    overdue_cases: dict[int, int]  # escalation rung -> open overdue cases
    notices: dict[str, int]  # NOTICE_STATES -> notices
    notice_lag_seconds: float  # how long the longest-waiting notice that is due has waited; 0: none waits
    pushes: dict[str, int]  # PUSH_STATES -> upstream pushes


def _state(pending: bool, failed_before: bool, other: str) -> str:
    if pending:
        return "retrying" if failed_before else "waiting"
    return other


async def read_operations_figures(session: AsyncSession, now: datetime) -> OperationsFigures:
    """Read every figure in one session (four grouped counts and a minimum)."""
    by_stage = (
        await session.exec(
            select(Case.stage, func.count()).where(col(Case.stage).in_(OPEN_STAGES)).group_by(col(Case.stage))
        )
    ).all()
    open_cases = {stage.value: 0 for stage in OPEN_STAGES} | {Stage(stage).value: n for stage, n in by_stage}

    by_rung = (
        await session.exec(
            select(Case.escalation_rung, func.count())
            .where(col(Case.overdue), col(Case.stage).in_(OPEN_STAGES))
            .group_by(col(Case.escalation_rung))
        )
    ).all()
    overdue_cases = dict.fromkeys(REPORTED_RUNGS, 0) | dict(by_rung)

    retried = col(Notification.attempts) > 0
    notice_rows = (
        await session.exec(
            select(Notification.status, retried, func.count())
            .where(col(Notification.status).in_([NoticeStatus.PENDING, NoticeStatus.SENDING, NoticeStatus.FAILED]))
            .group_by(col(Notification.status), retried)
        )
    ).all()
    notices = dict.fromkeys(NOTICE_STATES, 0)
    for status, failed_before, n in notice_rows:
        state = _state(NoticeStatus(status) == NoticeStatus.PENDING, bool(failed_before), NoticeStatus(status).value)
        notices[state] += n

    due_since = func.coalesce(Notification.next_attempt_at, Notification.created_at)
    oldest_due = (
        await session.exec(
            select(func.min(due_since)).where(col(Notification.status) == NoticeStatus.PENDING, due_since <= now)
        )
    ).one()
    lag = max(0.0, (now - _aware(oldest_due)).total_seconds()) if oldest_due is not None else 0.0

    push_retried = col(UpstreamPush.attempts) > 0
    push_rows = (
        await session.exec(
            select(UpstreamPush.status, push_retried, func.count())
            .where(col(UpstreamPush.status).in_([PushStatus.PENDING, PushStatus.SENDING, PushStatus.DEAD]))
            .group_by(col(UpstreamPush.status), push_retried)
        )
    ).all()
    pushes = dict.fromkeys(PUSH_STATES, 0)
    for status, failed_before, n in push_rows:
        state = _state(PushStatus(status) == PushStatus.PENDING, bool(failed_before), PushStatus(status).value)
        pushes[state] += n

    return OperationsFigures(now, open_cases, overdue_cases, notices, lag, pushes)


def _aware(moment: datetime | str) -> datetime:
    """min() over a UTC timestamp column: SQLite may answer naive text, PostgreSQL an aware datetime."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
