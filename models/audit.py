"""The audit log (审计日志): append-only record of every decision, PII reveal and administrative change.

Rows are only ever inserted (no API updates or deletes them; on PostgreSQL a trigger refuses both).
`unit_id` is the unit a record concerns, so supervisors can read the log of their subtree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=50, description='"user:<id>", "apikey:<id>" or "system"')
    actor_role: str = Field(default="", max_length=20)
    action: str = Field(max_length=60, index=True, description="e.g. case.accept, pii.reveal, policy.edit")
    target_type: str = Field(max_length=30)
    target_id: str = Field(max_length=64)
    unit_id: int | None = Field(default=None, index=True)
    reason: str = Field(default="", max_length=2000)
    before: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    client: str = Field(default="", max_length=64, description="the caller's address")


class AuditEventRead(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    target_type: str
    target_id: str
    unit_id: int | None
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]
    client: str


def audit(
    session: AsyncSession,
    *,
    actor: str,
    actor_role: str,
    action: str,
    target_type: str,
    target_id: object,
    unit_id: int | None = None,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    client: str = "",
) -> None:
    """Stage one audit record; it commits with the change it describes."""
    session.add(
        AuditEvent(
            actor=actor,
            actor_role=actor_role,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            unit_id=unit_id,
            reason=reason,
            before=before or {},
            after=after or {},
            client=client[:64],
        )
    )
