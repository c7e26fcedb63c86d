"""One-time links for raters (评价人链接): answer the feedback, satisfied or not.

A link is made once per case round, together with the notices that carry it, and the same link
goes out on every retry of those notices. Lookups go by a SHA-256 of the random token; the token
itself is kept only encrypted (the rater-PII keys), so a retried send can repeat it. A link has one
purpose, one case round and an expiry; once used or expired it says so plainly.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.db import UTCDateTime, utcnow
from models.pii import EncryptedText

FEEDBACK_RESPONSE = "feedback_response"


class RaterLink(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("case_id", "round", "purpose", name="uq_raterlink_case_round_purpose"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    round: int
    purpose: str = Field(max_length=30)
    token_hash: str = Field(max_length=64, unique=True)
    token_sealed: str | None = Field(default=None, sa_type=EncryptedText, description="the token, encrypted")
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answer_satisfied: bool | None = None
    answer_comment: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def new_token() -> tuple[str, str]:
    """(token for the URL, hash to store)."""
    token = secrets.token_urlsafe(24)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
