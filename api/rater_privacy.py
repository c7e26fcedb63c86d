"""Revealing a rater's contact (查看评价人信息): only the case's handlers, with a stated reason, always audited."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import CurrentUser, SessionDep, audit_user_action
from api.errors import api_error
from api.params import IdPath
from models.case.context import load_case_context
from models.request_body import RequestBody
from models.roles import Role

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


class RevealRequest(RequestBody):
    reason: str = Field(min_length=4, max_length=500, description="Why the contact is needed, e.g. 电话回访")


class RaterContactRead(BaseModel):
    name: str | None
    phone: str | None
    email: str | None


@router.post("/{case_id}/rater/reveal", response_model=RaterContactRead)
async def reveal_rater(
    case_id: IdPath, body: RevealRequest, request: Request, session: SessionDep, user: CurrentUser
) -> RaterContactRead:
    """The rater's full contact, for the staff of the unit handling the case. Every reveal is audited."""
    try:
        ctx = await load_case_context(session, case_id)
    except LookupError:
        raise api_error(404, "not_found", f"工单 {case_id} 不存在或无权查看") from None
    if user.role != Role.UNIT_STAFF or user.unit_id != ctx.case.unit_id:
        # Same answer as a missing case for anyone outside the handling unit.
        raise api_error(404, "not_found", f"工单 {case_id} 不存在或无权查看")
    rating = ctx.rating
    shown = [field for field in ("name", "phone", "email") if getattr(rating, f"rater_{field}")]
    audit_user_action(
        session,
        request,
        user,
        "pii.reveal",
        "rating",
        rating.id,
        unit_id=ctx.case.unit_id,
        reason=body.reason,
        after={"case_id": case_id, "fields": shown},
    )
    await session.commit()
    return RaterContactRead(name=rating.rater_name, phone=rating.rater_phone, email=rating.rater_email)
