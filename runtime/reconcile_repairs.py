"""The reconciliation's writes to the database: a case row brought to its workflow's state, the
identity sequences moved past every id Temporal knows, and notices held after a restore.

Each write is one transaction with its audit record (actor `system`, actions `case.reconciled`,
`case.workflow_terminated`, `notice.held_after_restore`, `notice.released`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text, update
from sqlmodel import col, select

from activities.case_records import apply_case_fields
from models.audit import audit
from models.case.activity_io import CaseFields
from models.case.records import Case, CaseEvent
from models.case.vocabulary import TERMINAL_STAGES, CaseSnapshot, Outcome
from models.db import Database, utcnow
from models.notifications import NoticeStatus, Notification
from models.ratings import Rating
from models.upstream import enqueue_case_result

SYSTEM = "system"
# Shown on the case page with the reconciled event: what the timeline may be missing, and why.
LOST_EVENTS_NOTE = (
    "数据库从备份恢复，备份之后的办理记录已丢失。工单状态已按流程引擎的当前状态更正；"
    "丢失的办理记录内容无法从流程引擎重建（其中可能含有个人信息，流程引擎不保存），仅列出其编号。"
)
RESTARTED_NOTE = "流程引擎中缺少本工单的流程，已按数据库中的工单重新启动：本轮从已交办开始，已办理的步骤须重新办理。"
HELD_NOTE = "held after a database restore: it may have been sent after the backup; confirm, then release"


def _columns(case: Case) -> dict[str, Any]:
    """The derived columns the workflow owns, as JSON values (for the event, the audit and comparing)."""
    return {
        "stage": case.stage.value,
        "round": case.round,
        "unit_id": case.unit_id,
        "verdict": case.verdict.value if case.verdict else None,
        "outcome": case.outcome.value if case.outcome else None,
        "overdue": case.overdue,
        "escalation_rung": case.escalation_rung,
        "deadlines": case.deadlines,
        "closed": case.closed_at is not None,
    }


def snapshot_columns(snapshot: CaseSnapshot) -> dict[str, Any]:
    """What `_columns` of a row brought to this snapshot would be."""
    return {
        "stage": snapshot.stage.value,
        "round": snapshot.round,
        "unit_id": snapshot.unit_id,
        "verdict": snapshot.verdict.value if snapshot.verdict else None,
        "outcome": snapshot.outcome.value if snapshot.outcome else None,
        "overdue": snapshot.overdue,
        "escalation_rung": snapshot.escalation_rung,
        "deadlines": [d.model_dump(mode="json") for d in snapshot.deadlines],
        "closed": snapshot.stage in TERMINAL_STAGES,
    }


def differences(case: Case, snapshot: CaseSnapshot) -> dict[str, list[Any]]:
    """Column → [row's value, workflow's value] for every column that differs."""
    row, wanted = _columns(case), snapshot_columns(snapshot)
    return {name: [row[name], wanted[name]] for name in row if row[name] != wanted[name]}


async def bring_case_to_snapshot(
    db: Database,
    case_id: int,
    snapshot: CaseSnapshot,
    *,
    reason: str,
    closed_at: datetime | None,
    lost_events: list[str],
    upstream_reporting: bool,
) -> dict[str, list[Any]]:
    """Write the snapshot into the case row (as record_case_event would) with one `reconciled` event and audit.

    Returns what changed. The snapshot is the whole state, so a verdict it no longer has (cleared by a
    reopening or reassignment the lost events held) is cleared here too.
    """
    now = utcnow()
    async with db.session() as session:
        case = await session.get(Case, case_id, with_for_update=True)
        if case is None:
            raise RuntimeError(f"case {case_id} does not exist")
        changed = differences(case, snapshot)
        before = {name: values[0] for name, values in changed.items()}
        was_terminal = case.stage in TERMINAL_STAGES
        terminal = snapshot.stage in TERMINAL_STAGES
        fields = CaseFields(
            stage=snapshot.stage,
            round=snapshot.round,
            unit_id=snapshot.unit_id,
            verdict=snapshot.verdict,
            outcome=snapshot.outcome,
            overdue=snapshot.overdue,
            escalation_rung=snapshot.escalation_rung,
            deadlines=snapshot.deadlines,
            closed_at=(case.closed_at or closed_at or now) if terminal else None,
        )
        apply_case_fields(case, fields, "reconciled", now)
        case.verdict = snapshot.verdict
        if not terminal:
            case.closed_at = None
        if snapshot.outcome == Outcome.NOT_ADOPTED:
            rating = await session.get(Rating, case.rating_id)
            if rating is not None and rating.adopted:
                rating.adopted = False  # the lost appeal_upheld event carried this (record_case_event)
                session.add(rating)
        if terminal and not was_terminal:
            await enqueue_case_result(session, case_id, upstream_reporting)
        data: dict[str, Any] = {"reason": reason, "changed": changed, "lost_events": lost_events}
        if lost_events:
            data["note"] = LOST_EVENTS_NOTE
        if reason != "database_behind":
            data["note"] = RESTARTED_NOTE + (LOST_EVENTS_NOTE if lost_events else "")
        session.add(
            CaseEvent(
                case_id=case_id,
                event_key=f"reconciled-{now.strftime('%Y%m%dT%H%M%S%f')}",
                stage=snapshot.stage,
                round=snapshot.round,
                action="reconciled",
                actor=SYSTEM,
                at=now,
                data=data,
            )
        )
        audit(
            session,
            actor=SYSTEM,
            actor_role=SYSTEM,
            action="case.reconciled",
            target_type="case",
            target_id=case_id,
            unit_id=case.unit_id,
            reason=reason,
            before=before,
            after={name: values[1] for name, values in changed.items()},
        )
        session.add(case)
        await session.commit()
    return changed


async def audit_terminated(
    db: Database, workflow_id: str, unit_id: int | None, reason: str, facts: dict[str, Any]
) -> None:
    """The audit record of a workflow terminated because the database has no case for it."""
    async with db.session() as session:
        audit(
            session,
            actor=SYSTEM,
            actor_role=SYSTEM,
            action="case.workflow_terminated",
            target_type="workflow",
            target_id=workflow_id,
            unit_id=unit_id,
            reason=reason,
            after=facts,
        )
        await session.commit()


async def advance_id_sequences(db: Database, rating_id: int, case_id: int, dry_run: bool) -> list[str]:
    """Move the rating and case id sequences past ids Temporal still knows (PostgreSQL).

    After a restore the sequences stand where the backup left them, and a new rating would get the id
    of a lost one: its workflow id (`case-rating-<id>`) and the case id in the lost workflow's input
    would name a different case. Returns the sequences that were (or, dry, would be) moved.
    """
    if db.engine.dialect.name != "postgresql":
        return []
    moved = []
    async with db.engine.begin() as conn:
        for table, needed in (("rating", rating_id), ("case", case_id)):
            sequence = (
                await conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": f'"{table}"'})
            ).scalar()
            if sequence is None:
                continue
            last = (await conn.execute(text(f"SELECT last_value, is_called FROM {sequence}"))).one()
            current = last.last_value if last.is_called else last.last_value - 1
            if current >= needed:
                continue
            moved.append(f"{table}.id {current} → {needed}")
            if not dry_run:
                await conn.execute(text("SELECT setval(:s, :v, true)"), {"s": sequence, "v": needed})
    return moved


async def hold_notices(db: Database, restored_at: datetime, dry_run: bool) -> list[int]:
    """Hold the notices that were waiting when the backup was taken: each may have gone out after it.

    They are not sent until an operator releases them (`--release-held`) or marks them sent
    (`--confirm-sent`). Returns their ids.
    """
    waiting = (col(Notification.status) == NoticeStatus.PENDING) | (col(Notification.status) == NoticeStatus.SENDING)
    async with db.session() as session:
        ids = list(
            (
                await session.exec(
                    select(Notification.id).where(waiting, col(Notification.created_at) < restored_at).with_for_update()
                )
            ).all()
        )
        if dry_run or not ids:
            return [i for i in ids if i is not None]
        await (await session.connection()).execute(
            update(Notification)
            .where(col(Notification.id).in_(ids))
            .values(status=NoticeStatus.HELD, claimed_until=None, last_error=HELD_NOTE)
        )
        audit(
            session,
            actor=SYSTEM,
            actor_role=SYSTEM,
            action="notice.held_after_restore",
            target_type="notification",
            target_id=f"{len(ids)} notices",
            reason=f"restored to {restored_at.isoformat()}",
            after={"held": len(ids)},
        )
        await session.commit()
    return [i for i in ids if i is not None]


async def settle_held(db: Database, confirmed_sent: set[str] | None) -> int:
    """Release held notices: those whose Message-ID or key is in `confirmed_sent` become sent, none resent;
    with None, every held notice goes back to pending and is sent (again). Returns how many changed."""
    async with db.session() as session:
        held = list(
            (await session.exec(select(Notification).where(col(Notification.status) == NoticeStatus.HELD))).all()
        )
        if confirmed_sent is not None:
            held = [n for n in held if n.dedup_key in confirmed_sent or n.message_id in confirmed_sent]
        for notice in held:
            if confirmed_sent is None:
                notice.status, notice.next_attempt_at, notice.last_error = NoticeStatus.PENDING, None, ""
            else:
                notice.status, notice.sent_at = NoticeStatus.SENT, notice.sent_at or utcnow()
                notice.last_error = "confirmed sent before the restore"
            session.add(notice)
        if held:
            audit(
                session,
                actor=SYSTEM,
                actor_role=SYSTEM,
                action="notice.released",
                target_type="notification",
                target_id=f"{len(held)} notices",
                reason="confirmed sent" if confirmed_sent is not None else "released to be sent",
                after={"ids": [n.id for n in held][:1000]},
            )
        await session.commit()
    return len(held)


async def case_rows(db: Database, open_only_since: datetime | None, workflow_ids: set[str]) -> list[Case]:
    """Open cases (opened at or after the moment, when given) and the cases of the given workflows."""
    async with db.session() as session:
        open_rows = select(Case).where(col(Case.closed_at).is_(None))
        if open_only_since is not None:
            open_rows = open_rows.where(col(Case.opened_at) >= open_only_since)
        rows = {case.id: case for case in (await session.exec(open_rows)).all()}
        wanted = sorted(workflow_ids)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for case in (await session.exec(select(Case).where(col(Case.workflow_id).in_(chunk)))).all():
                rows[case.id] = case
    return [rows[key] for key in sorted(k for k in rows if k is not None)]


async def timeline_keys(db: Database, case_id: int) -> set[str]:
    """The event keys of a case's timeline, and those a reconciled event already reported lost.

    Lost events cannot be written again, so once reported they count as accounted for: a second run
    finds nothing.
    """
    async with db.session() as session:
        rows = (
            await session.exec(
                select(CaseEvent.event_key, CaseEvent.action, CaseEvent.data).where(CaseEvent.case_id == case_id)
            )
        ).all()
    keys = {key for key, _, _ in rows}
    for _, action, data in rows:
        if action == "reconciled":
            keys.update(str(key) for key in data.get("lost_events", []))
    return keys
