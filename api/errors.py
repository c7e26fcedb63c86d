"""Error bodies a person can act on: {"detail": {"code", "message", "field"?, "errors"?, "request_id"?}}.

Every error the API gives has this shape, whoever raises it: route code (``api_error``), FastAPI's
validation, Starlette's own 404/405, the middlewares and the exception handlers (api/handlers.py).
``ErrorBody`` is its schema; api/openapi.py publishes it for every error status.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field or parameter; empty for the whole body")
    message: str
    type: str = Field(description="Machine-readable reason, e.g. missing, extra_forbidden, less_than_equal")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found, invalid_request")
    message: str = Field(description="What went wrong, in Chinese, for the person using the client")
    field: str | None = Field(default=None, description="The field or parameter at fault, when there is one")
    errors: list[FieldError] | None = Field(default=None, description="Each invalid field (422 only)")
    request_id: str | None = Field(default=None, description="Quote this to the operators (500 only)")


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    detail: ErrorDetail


def api_error(status_code: int, code: str, message: str, field: str | None = None) -> HTTPException:
    detail: dict[str, str] = {"code": code, "message": message}
    if field:
        detail["field"] = field
    return HTTPException(status_code=status_code, detail=detail)


def error_content(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON content of an error answer built outside a route (middlewares, handlers)."""
    return {"detail": {"code": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}}


STATUS_DESCRIPTIONS = {
    400: "Malformed request (an unparsable body)",
    401: "Not authenticated: no, expired or invalid token or API key",
    403: "Authenticated, but this role or scope may not do it",
    404: "Not found (or not visible to the caller)",
    409: "Conflicts with the current state",
    410: "Gone: used or expired",
    413: "Request body too large",
    422: "Invalid request: each bad field is named",
    429: "Too many requests: wait Retry-After seconds",
    500: "Unexpected error: quote request_id to the operators",
    503: "A backing service (the database) is unavailable: retry after Retry-After seconds",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: the error statuses the route itself may answer."""
    return {status: {"model": ErrorBody, "description": STATUS_DESCRIPTIONS[status]} for status in statuses}
