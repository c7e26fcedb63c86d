"""Idempotency-Key support: a retried request with the same key gets the first response back."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import api_error
from models.idempotency import IdempotentResponse

MAX_KEY_LENGTH = 200


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
    return JSONResponse(status_code=stored.status_code, content=stored.body, headers={"Idempotent-Replayed": "true"})


def remember(
    session: AsyncSession, scope: str, key: str, request_hash: str, status_code: int, body: dict[str, Any]
) -> None:
    """Stage the response for storage; it commits with the request's own writes."""
    session.add(IdempotentResponse(scope=scope, key=key, request_hash=request_hash, status_code=status_code, body=body))
