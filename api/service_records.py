"""Business systems register completed transactions (办件) so they can be rated, and ask for rating links.

A rating link (一人一事一码) is for one record: a random token in the URL, never the record number or
anything about the applicant. Only the system that registered the record may ask for one, and only
it may fetch that link's QR code again (the link is a credential; the QR code is the same link).
A link works until the record's 补充评价 window closes (models/rating_timing.py).

The applicant's phone and email, when given, are kept encrypted for the rating invitation of an
unrated record (models/invitation_sweep.py) and shown masked; they never reach Temporal.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api.deps import CurrentApiClient, SessionDep, SettingsDep
from api.devices.hub import DevicesDep
from api.errors import api_error, error_responses
from api.params import IdPath
from models.bundles import check_bundle
from models.calendar import load_calendar
from models.db import utcnow
from models.deadlines import clock_text_zh, rule_text_zh
from models.organisation import Staff, Unit
from models.policy_store import policy_for_unit
from models.privacy import mask_email, mask_phone
from models.rating_intake import rated_targets, targets_of
from models.rating_invitations import RatingInvitation, RatingLinkIssued, issue_invitation
from models.rating_timing import Clocks, supplementary_closes_at
from models.services import (
    ServiceChannel,
    ServiceItem,
    ServiceRecord,
    ServiceRecordCreate,
    ServiceRecordRead,
    phone_check_digest,
    phone_tail,
)
from pages.citizen.qr import PNG_TYPE, SVG_TYPE, qr_png, qr_svg, rating_url

router = APIRouter(tags=["service records"])

RecordNoPath = Annotated[str, Path(min_length=1, max_length=64, description="办件编号")]


@router.post(
    "/api/v1/service-records",
    response_model=ServiceRecordRead,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409),
)
async def register_service_record(
    body: ServiceRecordCreate,
    session: SessionDep,
    settings: SettingsDep,
    api_client: CurrentApiClient,
    devices: DevicesDep,
) -> ServiceRecordRead:
    """Register one completed transaction. The calling system becomes its source system.

    A window transaction with its staff member also gets a rating link that is pushed to that staff
    member's rating device (评价器, docs/devices.md), in the same database transaction.
    """
    item = (await session.exec(select(ServiceItem).where(ServiceItem.code == body.item_code))).first()
    if item is None:
        raise api_error(422, "unknown_item", f"事项编码 {body.item_code} 不存在", field="item_code")
    unit = (await session.exec(select(Unit).where(Unit.code == body.unit_code))).first()
    if unit is None:
        raise api_error(422, "unknown_unit", f"单位编码 {body.unit_code} 不存在", field="unit_code")
    staff = None
    if body.staff_no is not None:
        if body.service_channel != ServiceChannel.WINDOW:
            raise api_error(422, "staff_on_online_record", "网上办理的办件不关联工作人员", field="staff_no")
        staff = (await session.exec(select(Staff).where(Staff.staff_no == body.staff_no))).first()
        if staff is None or staff.unit_id != unit.id:
            raise api_error(422, "unknown_staff", f"工号 {body.staff_no} 不属于单位 {body.unit_code}", field="staff_no")
    if body.completed_at.tzinfo is None:
        raise api_error(
            422, "naive_time", "completed_at 须带时区，例如 2026-11-20T10:00:00+08:00", field="completed_at"
        )
    # 一次办多件 and 一件事: one applicant, one unit (a visit) or one region (a theme); models/bundles.py.
    refused = await check_bundle(session, body, unit, api_client.source_system, settings.signing_key())
    if refused is not None:
        raise api_error(422, refused.code, refused.message, field=refused.field)

    assert item.id is not None and unit.id is not None
    record = ServiceRecord(
        record_no=body.record_no,
        item_id=item.id,
        unit_id=unit.id,
        staff_id=staff.id if staff else None,
        applicant_type=body.applicant_type,
        service_channel=body.service_channel,
        source_system=api_client.source_system,
        completed_at=body.completed_at,
        applicant_phone_check=(
            phone_check_digest(settings.signing_key(), body.record_no, phone_tail(body.applicant_phone))
            if body.applicant_phone
            else None
        ),
        applicant_phone=body.applicant_phone,
        applicant_email=str(body.applicant_email) if body.applicant_email else None,
        bundle_no=body.bundle_no,
        bundle_kind=body.bundle_kind,
        theme_name=body.theme_name,
    )
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise api_error(409, "duplicate_record", f"办件编号 {body.record_no} 已登记", field="record_no") from None
    push = await devices.stage_counter_page(session, record, api_client.source_system)
    await session.commit()
    await devices.published(push)
    assert record.id is not None
    return ServiceRecordRead(
        id=record.id,
        record_no=record.record_no,
        item_code=item.code,
        unit_code=unit.code,
        staff_no=staff.staff_no if staff else None,
        applicant_type=record.applicant_type,
        service_channel=record.service_channel,
        source_system=record.source_system,
        completed_at=record.completed_at,
        applicant_phone=mask_phone(record.applicant_phone),
        applicant_email=mask_email(record.applicant_email),
        bundle_no=record.bundle_no,
        bundle_kind=record.bundle_kind,
        theme_name=record.theme_name,
    )


@router.post(
    "/api/v1/service-records/{record_no}/rating-link",
    response_model=RatingLinkIssued,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409),
)
async def issue_rating_link(
    record_no: RecordNoPath, session: SessionDep, settings: SettingsDep, api_client: CurrentApiClient
) -> RatingLinkIssued:
    """A rating link and its QR codes for one of the caller's records, valid until its 补充评价 window closes."""
    record = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == record_no))).first()
    # Another system's record looks missing: a link to it is not this caller's to hand out.
    if record is None or record.source_system != api_client.source_system:
        raise api_error(404, "unknown_record", f"办件编号 {record_no} 未登记", field="record_no")
    assert record.id is not None
    if set(targets_of(record)) <= await rated_targets(session, record.id):
        raise api_error(409, "already_rated", f"办件 {record_no} 已评价，无需再发评价链接")
    pinned = await policy_for_unit(session, record.unit_id)
    windows = pinned.profile.rating
    expires_at = supplementary_closes_at(record.completed_at, windows, Clocks(await load_calendar(session)))
    if expires_at <= utcnow():
        raise api_error(
            409,
            "rating_window_closed",
            f"办件 {record_no} 已过评价期限（办结后 {rule_text_zh(windows.supplementary)}，至 {clock_text_zh(expires_at)}）",
        )
    invitation, token = issue_invitation(session, record.id, api_client.source_system, expires_at, keep_token=True)
    await session.commit()
    base = settings.public_base_url.rstrip("/")
    return RatingLinkIssued(
        url=rating_url(settings, token),
        qr_svg_url=f"{base}/api/v1/rating-invitations/{invitation.id}/qr.svg",
        qr_png_url=f"{base}/api/v1/rating-invitations/{invitation.id}/qr.png",
        expires_at=invitation.expires_at,
    )


def _image(kind: str) -> dict[int | str, dict[str, object]]:
    return {200: {"description": "the rating link as a QR code", "content": {kind: {}}}, **error_responses(410)}


@router.get("/api/v1/rating-invitations/{invitation_id}/qr.svg", response_class=Response, responses=_image(SVG_TYPE))
async def rating_link_qr_svg(
    invitation_id: IdPath, session: SessionDep, settings: SettingsDep, api_client: CurrentApiClient
) -> Response:
    """The QR code of a rating link this system asked for (SVG, for print)."""
    token = await _own_token(session, invitation_id, api_client.source_system)
    return Response(qr_svg(rating_url(settings, token)), media_type=SVG_TYPE, headers=_NO_STORE)


@router.get("/api/v1/rating-invitations/{invitation_id}/qr.png", response_class=Response, responses=_image(PNG_TYPE))
async def rating_link_qr_png(
    invitation_id: IdPath, session: SessionDep, settings: SettingsDep, api_client: CurrentApiClient
) -> Response:
    """The QR code of a rating link this system asked for (PNG)."""
    token = await _own_token(session, invitation_id, api_client.source_system)
    return Response(qr_png(rating_url(settings, token)), media_type=PNG_TYPE, headers=_NO_STORE)


# The image is the link, and the link is a credential: never kept by a cache on the way.
_NO_STORE = {"Cache-Control": "no-store"}


async def _own_token(session: SessionDep, invitation_id: int, source_system: str) -> str:
    invitation = await session.get(RatingInvitation, invitation_id)
    if invitation is None or invitation.issued_by != source_system or invitation.token_sealed is None:
        raise api_error(404, "not_found", f"评价链接 {invitation_id} 不存在或无权查看")
    if invitation.used_at is not None or invitation.expires_at <= utcnow():
        raise api_error(410, "link_gone", "该评价链接已使用或已过期，请重新申请")
    return invitation.token_sealed
