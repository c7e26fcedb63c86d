"""Business systems register completed transactions (办件) so they can be rated."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api.deps import CurrentApiClient, SessionDep
from api.errors import api_error, error_responses
from models.organisation import Staff, Unit
from models.services import ServiceChannel, ServiceItem, ServiceRecord, ServiceRecordCreate, ServiceRecordRead

router = APIRouter(prefix="/api/v1/service-records", tags=["service records"])


@router.post("", response_model=ServiceRecordRead, status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def register_service_record(
    body: ServiceRecordCreate, session: SessionDep, api_client: CurrentApiClient
) -> ServiceRecordRead:
    """Register one completed transaction. The calling system becomes its source system."""
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
    )
    session.add(record)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise api_error(409, "duplicate_record", f"办件编号 {body.record_no} 已登记", field="record_no") from None
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
    )
