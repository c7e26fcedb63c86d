"""Who may see a case, and how a person stands to it (handles, supervises, reviews).

Every case read and every step goes through here, so scope is decided in one place: another unit's
case answers exactly like a missing one (404), so ids cannot be probed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import visible_unit_ids
from api.errors import api_error
from models.case import step_inputs
from models.case.records import Case
from models.case.steps import CaseStep, Relation
from models.case.vocabulary import Verdict
from models.organisation import Unit, unit_subtree_ids
from models.ratings import Rating
from models.roles import Role
from models.services import ServiceItem, ServiceRecord
from models.users import User


def summary_query() -> Any:
    return (
        # sqlmodel's select() is typed for at most four entities; at run time it takes any number.
        select(Case, Unit.name, ServiceItem.name, ServiceRecord.record_no, Rating)  # type: ignore[call-overload]
        .join(Rating, col(Rating.id) == Case.rating_id)
        .join(ServiceRecord, col(ServiceRecord.id) == Rating.record_id)
        .join(ServiceItem, col(ServiceItem.id) == ServiceRecord.item_id)
        .join(Unit, col(Unit.id) == Case.unit_id)
    )


def summary(
    case: Case, unit_name: str, item_name: str, record_no: str, rating: Rating, *, level_label: str
) -> dict[str, Any]:
    """A row of summary_query() as CaseSummary fields; level_label comes from the case's pinned policy."""
    return {
        "id": case.id,
        "rating_id": case.rating_id,
        "unit_id": case.unit_id,
        "unit_name": unit_name,
        "item_name": item_name,
        "record_no": record_no,
        "level": rating.level.value,
        "level_label": level_label,
        "stage": case.stage,
        "round": case.round,
        "overdue": case.overdue,
        "escalation_rung": case.escalation_rung,
        "next_due_at": case.next_due_at,
        "outcome": case.outcome,
        "opened_at": case.opened_at,
        "closed_at": case.closed_at,
    }


async def scope_conditions(session: AsyncSession, user: User) -> list[Any]:
    """SQL conditions limiting cases to what the user may see."""
    if user.role == Role.REVIEWER:
        # Reviewers decide appeals of their office's subtree: they see the cases that went down the appeal path.
        offices = await unit_subtree_ids(session, user.unit_id) if user.unit_id is not None else set()
        return [Case.verdict == Verdict.DISPUTED, col(Case.unit_id).in_(offices)]
    units = await visible_unit_ids(session, user)
    return [] if units is None else [col(Case.unit_id).in_(units)]


async def visible_case_row(session: AsyncSession, user: User, case_id: int) -> Any:
    conditions = await scope_conditions(session, user)
    row = (await session.exec(summary_query().where(Case.id == case_id, *conditions))).first()
    # Another unit's case answers exactly like a missing one, so ids cannot be probed.
    if row is None:
        raise api_error(404, "not_found", f"工单 {case_id} 不存在或无权查看")
    return row


async def relations(session: AsyncSession, user: User, case: Case) -> set[Relation]:
    """How the person stands to the case: the relations that decide which steps they may take."""
    found: set[Relation] = set()
    if user.role == Role.UNIT_STAFF and user.unit_id == case.unit_id:
        found.add(Relation.HANDLES)
    elif (
        user.role in (Role.SUPERVISOR, Role.REVIEWER)
        and user.unit_id is not None
        and case.unit_id in await unit_subtree_ids(session, user.unit_id)
    ):
        found.add(Relation.SUPERVISES if user.role == Role.SUPERVISOR else Relation.REVIEWS)
    return found


_REFUSALS = {
    Relation.HANDLES: ("not_handler", "只有承办单位的工作人员可以办理此工单"),
    Relation.SUPERVISES: ("not_supervisor", "只有督办此工单的督办人员可以执行此操作"),
    Relation.REVIEWS: ("not_reviewer", "只有此工单所属复核机构的复核人员可以作出复核决定"),
}


async def check_relation(session: AsyncSession, user: User, case: Case, step: CaseStep) -> None:
    """403 unless the person stands to the case as the step requires (checked before the body is read)."""
    if step.relation not in await relations(session, user, case):
        code, message = _REFUSALS[step.relation]
        raise api_error(403, code, message)


async def check_may_take(session: AsyncSession, user: User, case: Case, step: CaseStep, body: BaseModel) -> None:
    """403 unless the person stands to the case as the step requires (the reassignment target too)."""
    await check_relation(session, user, case, step)
    if isinstance(body, step_inputs.ReassignFields):
        assert user.unit_id is not None
        if await session.get(Unit, body.to_unit_id) is None:
            raise api_error(422, "unknown_unit", f"单位 {body.to_unit_id} 不存在", field="to_unit_id")
        if body.to_unit_id not in await unit_subtree_ids(session, user.unit_id):
            raise api_error(403, "not_supervisor", "只能改派到您督办范围内的单位")
