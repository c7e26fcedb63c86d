"""Error bodies a person can act on: {"detail": {"code", "message", "field"?}}."""

from __future__ import annotations

from fastapi import HTTPException


def api_error(status_code: int, code: str, message: str, field: str | None = None) -> HTTPException:
    detail: dict[str, str] = {"code": code, "message": message}
    if field:
        detail["field"] = field
    return HTTPException(status_code=status_code, detail=detail)
