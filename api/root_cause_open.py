"""Opening a root-cause rectification (发起根源整改): the checks, the rows and the workflow, all or nothing.

The row, its links and the audit record are written in one transaction that commits only once the
workflow has started; if Temporal cannot start it, the transaction rolls back and the caller gets 503
(nothing was opened). A workflow whose start was answered too late to keep the row ends by itself
(activities/root_cause.py). A case already in an open rectification is refused with 409 — checked
first for a clear message, and guaranteed by the unique `open_case_id` when two supervisors race.
"""

from __future__ import annotations

import asyncio
import uuid

from fastapi import HTTPException
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import api_error
from config import Settings
from models.audit import audit
from models.case.records import Case
from models.case.vocabulary import Actor
from models.deadlines import DeadlineSpec
from models.organisation import Unit, unit_subtree_ids
from models.policy_store import policy_for_unit
from models.ratings import Rating
from models.roles import Role
from models.root_cause import RootCauseCreate, RootCauseLink, RootCauseRectification
from models.root_cause_io import RootCauseWorkflowInput
from models.users import User
from runtime.temporal import TemporalConnection
from workflows.root_cause import RootCauseWorkflow

RETRY_AFTER_SECONDS = 5


def _ids(ids: list[int]) -> str:
    return "、".join(str(i) for i in ids)


async def open_root_cause(
    session: AsyncSession,
    settings: Settings,
    temporal: TemporalConnection,
    user: User,
    body: RootCauseCreate,
    client: str,
) -> RootCauseRectification:
    """Check, write and start; raises the API error a person can act on (403, 409, 422, 503)."""
    if user.role != Role.SUPERVISOR or user.unit_id is None or user.id is None:
        raise api_error(403, "not_supervisor", "只有督办人员可以发起根源整改")
    scope = await unit_subtree_ids(session, user.unit_id)
    if await session.get(Unit, body.unit_id) is None:
        raise api_error(422, "unknown_unit", f"单位 {body.unit_id} 不存在", field="unit_id")
    if body.unit_id not in scope:
        raise api_error(403, "not_supervisor", "只能交由您督办范围内的单位整改")
    case_ids = sorted(set(body.case_ids))
    await _check_cases(session, case_ids, scope)
    pinned = await policy_for_unit(session, body.unit_id)
    rules = pinned.profile.root_cause
    within = rules.deadline.within
    if body.working_days is not None:
        if body.working_days > rules.max_working_days:
            raise api_error(
                422,
                "too_long",
                f"整改时限最长 {rules.max_working_days} 个工作日（{pinned.code} 政策配置 root_cause.max_working_days），"
                f"收到 {body.working_days}",
                field="working_days",
            )
        within = DeadlineSpec(amount=body.working_days, unit="working_days")
    row = RootCauseRectification(
        workflow_id=f"{settings.workflow_id_prefix}root-cause-{uuid.uuid4().hex[:16]}",
        unit_id=body.unit_id,
        opened_by=user.id,
        title=body.title,
        problem=body.problem,
        concentration=body.concentration,
        policy_code=pinned.code,
        policy_version=pinned.version,
        within=str(within),
    )
    session.add(row)
    try:
        await session.flush()
        assert row.id is not None
        session.add_all(RootCauseLink(rectification_id=row.id, case_id=c, open_case_id=c) for c in case_ids)
        audit(
            session, actor=f"user:{user.id}", actor_role=user.role.value, action="root_cause.open",
            target_type="root_cause", target_id=row.id, unit_id=body.unit_id, reason=body.title,
            after={"cases": case_ids, "within": str(within), "concentration": body.concentration}, client=client,
        )  # fmt: skip
        await session.flush()
    except IntegrityError:
        # Another supervisor linked one of these cases a moment ago: say which.
        await session.rollback()
        await _check_cases(session, case_ids, scope)
        raise api_error(409, "case_in_open_root_cause", "所选工单已纳入另一项进行中的根源整改，请刷新后重试") from None
    inp = RootCauseWorkflowInput(
        rectification_id=row.id,
        unit_id=body.unit_id,
        case_ids=case_ids,
        within=within,
        policy=pinned,
        opened_by=Actor(user_id=user.id, role=user.role, unit_id=user.unit_id),
    )
    workflow_id = row.workflow_id
    try:
        async with asyncio.timeout(settings.temporal_start_timeout_seconds):
            temporal_client = await temporal.client()
            await temporal_client.start_workflow(
                RootCauseWorkflow.run, inp, id=workflow_id, task_queue=settings.temporal_task_queue
            )
    except Exception:  # noqa: BLE001 - Temporal down or slow: nothing is kept, the caller may retry
        await session.rollback()
        raise HTTPException(
            status_code=503,
            detail={"code": "not_taken", "message": "整改流程服务暂时不可用，根源整改未创建，请稍后重试"},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    await session.commit()
    await session.refresh(row)
    return row


async def _check_cases(session: AsyncSession, case_ids: list[int], scope: set[int]) -> None:
    """422 for a case out of scope or not adopted; 409 for one already in an open rectification."""
    rows = (
        await session.exec(
            select(Case.id, Case.unit_id, Rating.adopted)
            .join(Rating, col(Rating.id) == Case.rating_id)
            .where(col(Case.id).in_(case_ids))
        )
    ).all()
    found = {case_id: (unit_id, adopted) for case_id, unit_id, adopted in rows}
    unseen = [c for c in case_ids if c not in found or found[c][0] not in scope]
    if unseen:
        raise api_error(422, "unknown_case", f"工单 {_ids(unseen)} 不存在或不在您的督办范围内", field="case_ids")
    not_adopted = [c for c in case_ids if not found[c][1]]
    if not_adopted:
        raise api_error(
            422, "not_adopted", f"工单 {_ids(not_adopted)} 的差评已不予采纳，不能纳入根源整改", field="case_ids"
        )
    busy = (
        await session.exec(
            select(RootCauseLink.open_case_id, RootCauseLink.rectification_id).where(
                col(RootCauseLink.open_case_id).in_(case_ids)
            )
        )
    ).all()
    if busy:
        named = "；".join(f"工单 {case_id} 在根源整改 #{rectification_id}" for case_id, rectification_id in busy)
        raise api_error(409, "case_in_open_root_cause", f"工单已纳入进行中的根源整改：{named}", field="case_ids")
