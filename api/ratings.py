"""Rating intake (评价接收) for channel systems: POST a rating with an API key.

The writing itself is models/rating_intake.py, shared with the rater's own QR-code pages: the
rating, its case row and an outbox entry in one transaction, then the case started at once or left
to the outbox relay. Once that transaction has committed the answer is 201 whatever happens next:
the rating exists, and the relay covers the rest.

With an Idempotency-Key the key is claimed first, in the same transaction, so concurrent retries of one
rating write it once and all get the first answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, status
from fastapi.responses import JSONResponse
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import (
    Caller,
    CurrentApiClient,
    CurrentCaller,
    SessionDep,
    SettingsDep,
    TemporalDep,
    visible_unit_ids,
)
from api.errors import api_error
from api.idempotency import check_key, claim, fingerprint, replay, settle
from api.params import IdPath
from models.case.records import Case
from models.idempotency import IdempotentResponse
from models.policy import TagCatalogue
from models.policy_store import policy_for_unit
from models.privacy import mask_email, mask_name, mask_phone
from models.rating_codes import CodeRefused, read_rating
from models.rating_coverage import CoverageTaken, covered_ratings, read_coverage
from models.rating_intake import AlreadyRated, NoStaffToRate, accept_ratings, check_targets
from models.rating_timing import TimingRefused
from models.ratings import Rating, RatingAccepted, RatingCreate, RatingRead, RatingTarget
from models.services import ServiceRecord

router = APIRouter(prefix="/api/v1/ratings", tags=["ratings"])

_IDEMPOTENCY_HEADER = Header(alias="Idempotency-Key", description="Retry-safe key: a repeat returns the first response")


@router.post(
    "",
    response_model=RatingAccepted,
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"description": "unknown service record"},
        409: {
            "description": "target already rated (or a record of the bundle it covers, or rated the other way: "
            "whole vs stage), or the rating's timing refused: the 补充评价 window closed, "
            "a 追评 without a rating, beyond the profile's number or window"
        },
        422: {
            "description": "invalid request, a code the calling source's tables lack, a stage the source does not "
            "rate, or covers = bundle for a record of no bundle (field, value, source named)"
        },
    },
)
async def submit_rating(
    body: RatingCreate,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    api_client: CurrentApiClient,
    idempotency_key: Annotated[str | None, _IDEMPOTENCY_HEADER] = None,
) -> JSONResponse:
    """Accept one rating from a channel. A bad rating opens a case (差评工单)."""
    check_key(idempotency_key)
    scope = f"apikey:{api_client.id}:ratings"
    request_hash = fingerprint(body)
    if (replayed := await replay(session, scope, idempotency_key, request_hash)) is not None:
        return replayed

    record = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == body.record_no))).first()
    if record is None:
        raise api_error(404, "unknown_record", f"办件编号 {body.record_no} 未登记", field="record_no")
    # The region's tag catalogue is looked up only when there are tags: intake stays one query cheaper without.
    tags = (await policy_for_unit(session, record.unit_id)).profile.tags if body.tag_codes else TagCatalogue()
    try:
        fields = read_rating(body, api_client.source_system, tags)
        fields = read_coverage(body, record, fields, api_client.source_system)  # its stage and covers
    except CodeRefused as refused:
        raise api_error(422, refused.code, refused.message, field=refused.field) from None
    try:
        check_targets(record, [fields])
    except NoStaffToRate:
        raise api_error(422, "no_staff_to_rate", "该办件没有经办工作人员，只能评价事项", field="target") from None

    claimed: IdempotentResponse | None = None
    if idempotency_key is not None:
        # Before any other write: a lost claim rolls the session back and answers as the winner did.
        outcome = await claim(session, scope, idempotency_key, request_hash)
        if isinstance(outcome, JSONResponse):
            return outcome
        claimed = outcome

    def settle_claim(accepted: list[RatingAccepted]) -> None:
        if claimed is not None:
            settle(session, claimed, status.HTTP_201_CREATED, accepted[0].model_dump(mode="json"))

    try:
        result = await accept_ratings(
            session, settings, temporal, record, [fields], api_client.source_system, before_commit=settle_claim
        )
    except TimingRefused as refused:
        raise api_error(409, refused.code, refused.message, field=refused.field) from None
    except CoverageTaken as taken:  # a record the rating covers is rated, or rated the other way (stage/whole)
        hint = "（追评请设 follow_up）" if taken.taken.code == "already_rated" else ""
        raise api_error(409, taken.taken.code, taken.taken.message + hint, field=taken.taken.field) from None
    except AlreadyRated:
        if body.is_follow_up:  # two follow-ups at once: the other one took the number
            raise api_error(
                409, "follow_up_limit_reached", f"办件 {body.record_no} 的{_target_zh(body.target)}已追评", "follow_up"
            ) from None
        raise api_error(
            409,
            "already_rated",
            f"办件 {body.record_no} 的{_target_zh(body.target)}已评价过，每个对象只能评价一次（追评请设 follow_up）",
            field="target",
        ) from None
    return JSONResponse(status_code=status.HTTP_201_CREATED, content=result.accepted[0].model_dump(mode="json"))


def _target_zh(target: RatingTarget) -> str:
    return "事项" if target == RatingTarget.ITEM else "工作人员"


@router.get("/{rating_id}", response_model=RatingRead)
async def get_rating(rating_id: IdPath, session: SessionDep, caller: CurrentCaller) -> RatingRead:
    """One rating, rater contact masked. Business systems see their own; staff see their units'."""
    rating = await session.get(Rating, rating_id)
    record = await session.get(ServiceRecord, rating.record_id) if rating else None
    if rating is None or record is None or not await _may_read(session, caller, rating, record):
        raise api_error(404, "not_found", f"评价 {rating_id} 不存在或无权查看")
    # A copy of a bundle rating is handled in its lead's case.
    case = (await session.exec(select(Case.id).where(Case.rating_id == (rating.lead_rating_id or rating.id)))).first()
    assert rating.id is not None
    covered = (
        [] if rating.lead_rating_id is not None else (await covered_ratings(session, [rating.id])).get(rating.id, [])
    )
    return RatingRead(
        id=rating.id,
        record_no=record.record_no,
        level=rating.level,
        channel=rating.channel,
        target=rating.target,
        stage=rating.stage,
        lead_rating_id=rating.lead_rating_id,
        covered=covered,
        answers=rating.answers,
        comment=rating.comment,
        real_name=rating.real_name,
        rater_name=mask_name(rating.rater_name),
        rater_phone=mask_phone(rating.rater_phone),
        rater_email=mask_email(rating.rater_email),
        is_bad=rating.is_bad,
        case_id=case,
        source_system=rating.source_system,
        submitted_at=rating.submitted_at,
    )


async def _may_read(session: AsyncSession, caller: Caller, rating: Rating, record: ServiceRecord) -> bool:
    if caller.api_client is not None:
        return caller.api_client.source_system == rating.source_system
    assert caller.user is not None
    units = await visible_unit_ids(session, caller.user)
    return units is None or record.unit_id in units
