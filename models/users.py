"""Staff accounts (roles and unit scope) and business-system API keys."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.db import UTCDateTime, str_enum, utcnow
from models.roles import Role


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=64)
    display_name: str = Field(max_length=100)
    email: str | None = Field(default=None, max_length=254)
    password_hash: str = Field(max_length=200)
    role: Role = Field(sa_type=str_enum(Role))
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    active: bool = True
    # Login throttling: consecutive failures, and until when the account is locked after too many.
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """A business system's key. Only a SHA-256 of the secret is stored; prefix finds the row."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    source_system: str = Field(max_length=64)
    prefix: str = Field(unique=True, max_length=16)
    key_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
