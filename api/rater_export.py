"""A rater's data export on request (个人信息查阅、复制): administrators only, with a stated reason, always audited."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field

from api.deps import CurrentAdmin, SessionDep, SettingsDep, audit_user_action
from api.errors import error_responses
from models.db import utcnow
from models.rater_export import RaterExport, export_rater
from models.request_body import RequestBody

router = APIRouter(prefix="/api/v1/admin/rater-data", tags=["admin"])


class RaterExportRequest(RequestBody):
    phone: str = Field(
        min_length=7,
        max_length=32,
        pattern=r"^\+?\d[\d\- ]{5,19}$",  # as a rater's phone is taken (models/ratings.py)
        description="The phone number the rater gave (评价人手机号)",
    )
    reason: str = Field(
        min_length=4, max_length=500, description="Why, e.g. 评价人申请查阅个人信息（申请编号 2026-001）"
    )


@router.post("/export", response_model=RaterExport, responses=error_responses(403))
async def export_rater_data(
    body: RaterExportRequest, request: Request, session: SessionDep, settings: SettingsDep, admin: CurrentAdmin
) -> RaterExport:
    """Everything stored about the rater with this phone number, as JSON. Audited with the reason; never the phone."""
    exported = await export_rater(session, settings.signing_key(), body.phone, utcnow())
    audit_user_action(
        session,
        request,
        admin,
        "pii.export",
        "rater",
        "by_phone",
        reason=body.reason,
        after={"ratings": [rating.rating_id for rating in exported.ratings]},
    )
    await session.commit()
    return exported
