"""The base of every request body: unknown fields and NUL characters are refused with a 422 naming the field.

A misspelled field (``"realName": true``) must not be silently dropped, and PostgreSQL cannot store a
NUL in a text column, so both are caught here, before anything is looked up or written.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(_has_nul(v) for v in value)
    return False


class RequestBody(BaseModel):
    """A JSON request body: extra fields forbidden, no NUL anywhere in its text."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return value
