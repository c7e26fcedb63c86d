"""Reusable path, query and header parameter types with the bounds the database can actually hold.

Ids are INTEGER columns on PostgreSQL: an id past 2**31-1 would reach the database and fail there as a
500 (or, past 2**63-1, as an overflow in the driver), so it is refused here as a 422 naming the
parameter. The same goes for offsets the database would refuse and years the calendar does not cover.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Header, Path, Query
from pydantic import BeforeValidator

from api.idempotency import MAX_KEY_LENGTH

MAX_ID = 2_147_483_647
# Past this no page is useful, and PostgreSQL's OFFSET is a BIGINT: keep far below it.
MAX_OFFSET = 1_000_000
MIN_YEAR, MAX_YEAR = 2000, 2100
MAX_QUERY_TEXT = 200


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value: object) -> object:
    # pydantic reads a bare number as a Unix time ("0.5" is 1970-01-01T00:00:00.5Z), which the schema does not
    # document and no caller means: a date or time in a query is ISO 8601 text.
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        raise ValueError(f"须为 ISO 8601 日期或时间，例如 2026-12-01 或 2026-12-01T00:00:00+08:00（收到 {value!r}）")
    return value


# Wrap a date or datetime query parameter's type: Annotated[datetime | None, IsoText, Query(...)].
IsoText = BeforeValidator(_not_a_number)

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A database id (1–2147483647)")]
IdQuery = Annotated[int, Query(ge=1, le=MAX_ID, description="A database id (1–2147483647)")]
OptionalIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="A database id (1–2147483647)")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"rows to skip (0–{MAX_OFFSET})")]
# Page sizes of 1..maximum (routes differ in how much one page may hold).
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
AuditLimit = Annotated[int, Query(ge=1, le=500, description="page size")]
Year = Annotated[int, Path(ge=MIN_YEAR, le=MAX_YEAR, description=f"{MIN_YEAR}–{MAX_YEAR}")]
Version = Annotated[int | None, Query(ge=1, le=MAX_ID, description="a version number; omitted: the latest")]
CodePath = Annotated[str, Path(min_length=1, max_length=64, description="a code, e.g. default or 330100")]
QueryText = Annotated[str | None, Query(min_length=1, max_length=MAX_QUERY_TEXT)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="Retry-safe key: a repeat with the same key and body acts once and returns the first response",
    ),
]
