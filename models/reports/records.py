"""Published monthly reports: one row per version, frozen (PostgreSQL refuses UPDATE and DELETE on it).

The row holds everything a reader gets: the figures as canonical JSON, and the HTML, CSV and XLSX
rendered from them when published, byte for byte. `content_sha256` is the SHA-256 of the figures'
JSON; `artifact_sha256` of each rendered file. A correction is a new version that names the one it
corrects and why; both are kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import JSON, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.db import UTCDateTime, utcnow


class MonthlyReport(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("scope_key", "month", "version", name="uq_monthlyreport_scope_month_version"),)

    id: int | None = SQLField(default=None, primary_key=True)
    scope_key: str = SQLField(max_length=32, index=True, description='"unit:<id>" (a subtree) or "region:<id>"')
    unit_id: int | None = SQLField(default=None, foreign_key="unit.id")
    region_id: int | None = SQLField(default=None, foreign_key="region.id")
    month: str = SQLField(max_length=7, description="YYYY-MM, China time")
    version: int = SQLField(ge=1)
    corrects_id: int | None = SQLField(default=None, foreign_key="monthlyreport.id")
    correction_reason: str = SQLField(default="", max_length=2000)
    title: str = SQLField(max_length=200)
    figures: str = SQLField(sa_column=Column(Text, nullable=False), description="canonical JSON")
    html: str = SQLField(sa_column=Column(Text, nullable=False))
    csv: bytes = SQLField(sa_column=Column(LargeBinary, nullable=False))
    xlsx: bytes = SQLField(sa_column=Column(LargeBinary, nullable=False))
    content_sha256: str = SQLField(max_length=64)
    artifact_sha256: dict[str, str] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    published_by: int = SQLField(foreign_key="user.id")
    published_at: datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)


class ReportVersionRead(BaseModel):
    id: int
    scope_key: str
    month: str
    version: int
    title: str
    corrects_id: int | None = Field(description="the version this one corrects")
    corrected_by_id: int | None = Field(default=None, description="the newer version that corrects this one")
    correction_reason: str
    content_sha256: str = Field(description="SHA-256 of the figures' canonical JSON")
    artifact_sha256: dict[str, str] = Field(description="SHA-256 of each stored file: html, csv, xlsx")
    published_by: int
    published_at: datetime
    links: dict[str, str]


class ReportRead(ReportVersionRead):
    figures: dict[str, Any]
