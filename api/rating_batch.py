"""Batch intake: POST /api/v1/ratings:batch, up to 500 ratings with an answer for each, in order.

Each item is what POST /api/v1/ratings takes (names or the caller's own codes), plus an optional
`idempotency_key`. Items are judged one by one (models/bulk_intake.py) and the good ones written
together, in one transaction, by the same intake code as a single rating; a bad item never stops
the others. A retried item is answered as the first time and written once: by its own key, or by
its natural key (record_no + target) when it is the same rating. Bad ratings' cases are started by
the worker's outbox relay within seconds (HCP_OUTBOX_RELAY_INTERVAL_SECONDS), not inside the call.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentApiClient, SessionDep, SettingsDep
from api.errors import api_error, error_responses
from api.idempotency import MAX_KEY_LENGTH, fingerprint
from config import Settings
from models.bulk_intake import IntakeItem, ItemDone, ItemReady, ItemRefused, PolicyCache, Prepared, prepare
from models.idempotency import IdempotentResponse
from models.rating_intake import AlreadyRated, write_ratings
from models.ratings import CoveredRating, RatingAccepted, RatingCreate
from runtime.metrics import count_ratings_received

router = APIRouter(tags=["ratings"])

BATCH_PATH = "/api/v1/ratings:batch"
MAX_BATCH_ITEMS = 500
# 500 items of a few hundred bytes, with room for long comments; every other route keeps the 64 KiB limit.
BATCH_BODY_MAX_BYTES = 2 * 1024 * 1024
_ATTEMPTS = 3  # a concurrent writer of the same rating makes the transaction fail; the next look replays it


class RatingBatchItem(RatingCreate):
    """One item of a batch: a rating as POST /api/v1/ratings takes it, with its own retry key."""

    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="Retry-safe key of this item; without one, record_no + target is the key",
    )


_ITEM_SCHEMA = RatingBatchItem.model_json_schema(ref_template="#/components/schemas/{model}")
_ITEM_SCHEMA.pop("$defs", None)  # RaterContact and the enums are components already (POST /api/v1/ratings)


class RatingBatch(BaseModel):
    """Body of POST /api/v1/ratings:batch. Items are checked one by one, so one bad item refuses only itself."""

    model_config = ConfigDict(extra="forbid")

    items: list[Annotated[dict[str, Any], WithJsonSchema(_ITEM_SCHEMA)]] = Field(
        min_length=1, max_length=MAX_BATCH_ITEMS, description=f"1 to {MAX_BATCH_ITEMS} ratings"
    )


class BatchItemError(BaseModel):
    code: str = Field(description="unknown_record, already_rated, unknown_code, invalid_request, …")
    message: str = Field(description="What is wrong with this item, in Chinese")
    field: str | None = Field(default=None, description="The item's field at fault")
    value: str | None = Field(default=None, description="The code or record number at fault (never contact details)")
    source: str | None = Field(default=None, description="The source system whose tables were used")


class BatchItemResult(BaseModel):
    index: int = Field(description="The item's position in `items`, from 0")
    status: Literal["accepted", "rejected"]
    rating_id: int | None = None
    is_bad: bool | None = None
    case_id: int | None = Field(default=None, description="The case of a bad rating (差评工单)")
    covered: list[CoveredRating] = Field(
        default_factory=list, description="The other records of the bundle the rating was written on (one case)"
    )
    error: BatchItemError | None = None


class RatingBatchResult(BaseModel):
    accepted: int = Field(description="Items accepted, retried ones included")
    rejected: int
    written: int = Field(
        description="Ratings this call wrote (a retried item writes nothing; a bundle rating counts each record)"
    )
    cases_opened: int = Field(description="Cases this call opened, one per bad rating written")
    items: list[BatchItemResult]


@router.post(BATCH_PATH, response_model=RatingBatchResult, responses=error_responses(409))
async def submit_rating_batch(
    body: RatingBatch, session: SessionDep, settings: SettingsDep, api_client: CurrentApiClient
) -> RatingBatchResult:
    """Accept up to 500 ratings: an answer per item, in order; the good ones are written even if others are not."""
    checked: list[RatingBatchItem | ItemRefused] = []
    for index, raw in enumerate(body.items):
        try:
            checked.append(RatingBatchItem.model_validate(raw))
        except ValidationError as exc:
            checked.append(_invalid(index, exc))
    # Read before any rollback expires the key's row.
    source_system, scope = api_client.source_system, f"apikey:{api_client.id}:ratings:item"
    for _ in range(_ATTEMPTS):
        try:
            return await _take(session, settings, source_system, scope, checked)
        except (AlreadyRated, IntegrityError):  # a concurrent request wrote one of these first: look again
            await session.rollback()
    raise api_error(409, "batch_conflict", "这批评价正被另一请求同时写入，请稍后重试（已写入的评价不会重复）")


async def _take(
    session: AsyncSession,
    settings: Settings,
    source_system: str,
    scope: str,
    checked: list[RatingBatchItem | ItemRefused],
) -> RatingBatchResult:
    results: dict[int, Prepared] = {i: c for i, c in enumerate(checked) if isinstance(c, ItemRefused)}
    keyed = {i: c for i, c in enumerate(checked) if isinstance(c, RatingBatchItem) and c.idempotency_key}
    by_key = await _answered_keys(session, scope, keyed)
    results.update(by_key)
    to_prepare = [
        IntakeItem(i, c) for i, c in enumerate(checked) if isinstance(c, RatingBatchItem) and i not in results
    ]
    results.update((p.position, p) for p in await prepare(session, to_prepare, source_system, PolicyCache()))
    ready = [p for p in results.values() if isinstance(p, ItemReady)]
    written, _starts = await write_ratings(session, settings, [p.write for p in ready], source_system)
    for one, accepted in zip(ready, written, strict=True):
        results[one.position] = ItemDone(one.position, accepted)
    for i, keyed_item in keyed.items():
        done = results[i]
        if isinstance(done, ItemDone) and i not in by_key:
            session.add(_answer(scope, keyed_item, done.accepted))
    await session.commit()
    count_ratings_received(one.write.fields.channel.value for one in ready)
    items = [_result(i, results[i]) for i in range(len(checked))]
    return RatingBatchResult(
        accepted=sum(r.status == "accepted" for r in items),
        rejected=sum(r.status == "rejected" for r in items),
        written=sum(1 + len(a.covered) for a in written),
        cases_opened=sum(a.case_id is not None for a in written),
        items=items,
    )


async def _answered_keys(session: AsyncSession, scope: str, keyed: dict[int, RatingBatchItem]) -> dict[int, Prepared]:
    """Items whose key has an answer already (the same item: that answer; another item: refused), or repeats a key."""
    keys = sorted({item.idempotency_key for item in keyed.values() if item.idempotency_key})
    stored = {
        row.key: row
        for row in (
            await session.exec(
                select(IdempotentResponse).where(
                    IdempotentResponse.scope == scope, col(IdempotentResponse.key).in_(keys)
                )
            )
        ).all()
    }
    answered: dict[int, Prepared] = {}
    first_at: dict[str, int] = {}
    for i, item in keyed.items():
        key = item.idempotency_key
        assert key is not None
        row = stored.get(key)
        if key in first_at:
            answered[i] = ItemRefused(
                i, "duplicate_item", f"与第 {first_at[key]} 项的 idempotency_key 相同", "idempotency_key", key
            )
        elif row is not None and row.request_hash != fingerprint(item):
            answered[i] = ItemRefused(
                i,
                "idempotency_key_reused",
                "此 idempotency_key 已用于另一条不同的评价，请换一个新的键",
                "idempotency_key",
                key,
            )
        elif row is not None:
            answered[i] = ItemDone(i, RatingAccepted.model_validate(row.body))
        first_at.setdefault(key, i)
    return answered


def _answer(scope: str, item: RatingBatchItem, accepted: RatingAccepted) -> IdempotentResponse:
    assert item.idempotency_key is not None
    return IdempotentResponse(
        scope=scope,
        key=item.idempotency_key,
        request_hash=fingerprint(item),
        status_code=201,
        body=accepted.model_dump(mode="json"),
    )


def _invalid(index: int, exc: ValidationError) -> ItemRefused:
    """An item the input model refuses: its first error, by field, never echoing the value (it may be a phone)."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return ItemRefused(index, "invalid_request", f"第 {index} 项内容有误：{first['msg']}", field or None)


def _result(index: int, prepared: Prepared) -> BatchItemResult:
    if isinstance(prepared, ItemDone):
        return BatchItemResult(index=index, status="accepted", **prepared.accepted.model_dump())
    assert isinstance(prepared, ItemRefused), "every ready item is written before the answer"
    error = BatchItemError(
        code=prepared.code,
        message=prepared.message,
        field=prepared.field,
        value=prepared.value,
        source=prepared.source,
    )
    return BatchItemResult(index=index, status="rejected", error=error)
