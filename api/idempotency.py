"""Idempotency-Key support: a retried request with the same key gets the first response back.

Two ways to use it. `replay` + `remember` store the answer with the request's own writes; enough when
concurrent duplicates are refused by something else. `replay` + `claim` + `settle` make concurrent
duplicates safe: the key is inserted first, in the request's transaction, so the unique constraint on
(scope, key) lets exactly one request act while the others wait for its answer and replay it.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import api_error
from models.idempotency import IdempotentResponse

MAX_KEY_LENGTH = 200
# status_code of a claimed key whose answer is not settled yet. It is only ever visible inside the
# claiming transaction, but a replay treats it as "no answer yet" rather than replaying it.
PENDING = 0
# How long a duplicate waits for the request holding its key to commit an answer.
CLAIM_WAIT_SECONDS = 5.0
_CLAIM_POLL_SECONDS = 0.05


def fingerprint(body: BaseModel) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def check_key(key: str | None) -> None:
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
        raise api_error(
            422, "bad_idempotency_key", f"Idempotency-Key 长度须为 1–{MAX_KEY_LENGTH}", field="Idempotency-Key"
        )


async def replay(session: AsyncSession, scope: str, key: str | None, request_hash: str) -> JSONResponse | None:
    """The stored response for (scope, key), or None. A reused key with a different body is a 422."""
    if key is None:
        return None
    stored = (
        await session.exec(
            select(IdempotentResponse).where(IdempotentResponse.scope == scope, IdempotentResponse.key == key)
        )
    ).first()
    if stored is None:
        return None
    if stored.request_hash != request_hash:
        raise api_error(
            422,
            "idempotency_key_reused",
            "此 Idempotency-Key 已用于另一个不同的请求，请换一个新的键",
            field="Idempotency-Key",
        )
    if stored.status_code == PENDING:
        return None
    return JSONResponse(status_code=stored.status_code, content=stored.body, headers={"Idempotent-Replayed": "true"})


async def claim(session: AsyncSession, scope: str, key: str, request_hash: str) -> IdempotentResponse | JSONResponse:
    """Claim (scope, key) for this request, or return the answer of the request that holds it.

    Call it before the request writes anything: a lost claim rolls the session back. The claim is
    flushed at once, so a concurrent duplicate blocks on the unique constraint until the holder
    commits (then fails here and replays its answer) or rolls back (then claims the key itself).
    Returns the claimed row, to be given to `settle` before the commit; or the replayed response.
    A different body under the same key raises the 422 of `replay`.
    """
    row = IdempotentResponse(scope=scope, key=key, request_hash=request_hash, status_code=PENDING, body={})
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
    else:
        return row
    return await _wait_for_answer(session, scope, key, request_hash)


def settle(session: AsyncSession, row: IdempotentResponse, status_code: int, body: dict[str, Any]) -> None:
    """Record the answer on a claimed key; it commits with the request's own writes."""
    row.status_code = status_code
    row.body = body
    session.add(row)


async def _wait_for_answer(session: AsyncSession, scope: str, key: str, request_hash: str) -> JSONResponse:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLAIM_WAIT_SECONDS
    while True:
        if (replayed := await replay(session, scope, key, request_hash)) is not None:
            return replayed
        # End the read transaction so the next look sees what has been committed since.
        await session.rollback()
        if loop.time() >= deadline:
            raise api_error(
                409,
                "idempotency_key_in_progress",
                "使用同一 Idempotency-Key 的请求正在处理中，请稍后重试",
                field="Idempotency-Key",
            )
        await asyncio.sleep(_CLAIM_POLL_SECONDS)
