"""Service items (事项) and service records (办件), registered by business systems."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, EmailStr, field_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from models.db import UTCDateTime, str_enum, utcnow
from models.pii import EncryptedText
from models.request_body import RequestBody

_PHONE_RE = re.compile(r"^\+?\d[\d\- ]{5,19}$")


class ApplicantType(StrEnum):
    INDIVIDUAL = "individual"  # 个人
    LEGAL_PERSON = "legal_person"  # 法人


class ServiceChannel(StrEnum):
    """How the transaction was handled: at a window (staff can be rated) or online (item only)."""

    WINDOW = "window"  # 窗口办理
    ONLINE = "online"  # 网上办理


class BundleKind(StrEnum):
    """Why several records share a bundle number, and so one rating."""

    VISIT = "visit"  # 一次办多件: several transactions at one visit
    THEME = "theme"  # 一件事: the items of one theme, applied for together


class ServiceItem(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=64, description="事项编码")
    name: str = Field(max_length=200)
    item_type: str = Field(max_length=32, description="事项类型, e.g. 行政许可, 公共服务")


class ServiceRecord(SQLModel, table=True):
    """One completed transaction (办件). Ratings attach to it."""

    id: int | None = Field(default=None, primary_key=True)
    record_no: str = Field(unique=True, max_length=64, description="办件编号")
    item_id: int = Field(foreign_key="serviceitem.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    applicant_type: ApplicantType = Field(sa_type=str_enum(ApplicantType))
    service_channel: ServiceChannel = Field(sa_type=str_enum(ServiceChannel))
    source_system: str = Field(max_length=64, index=True)
    completed_at: datetime = Field(
        sa_type=UTCDateTime, index=True
    )  # the sweeps select by it (models/unrated_records.py)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A keyed digest of the applicant phone's last four digits (phone_check_digest), never the phone:
    # the rater proves a record is theirs with it at a window's code (一窗一码).
    applicant_phone_check: str | None = Field(default=None, max_length=64)
    bundle_no: str | None = Field(default=None, max_length=64, index=True, description="批次号 / 一件事办件编号")
    bundle_kind: BundleKind | None = Field(default=None, sa_type=str_enum(BundleKind))
    theme_name: str | None = Field(default=None, max_length=100, description="主题名称 of a 一件事 (theme) bundle")
    # The applicant's contact for a rating invitation (评价邀请), encrypted like a rater's (models/pii.py).
    applicant_phone: str | None = Field(default=None, sa_type=EncryptedText)
    applicant_email: str | None = Field(default=None, sa_type=EncryptedText)
    invited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ServiceRecordCreate(RequestBody):
    """Body of POST /api/v1/service-records. Lengths are those of the columns they are looked up in."""

    record_no: str = PydanticField(min_length=1, max_length=64, description="办件编号")
    item_code: str = PydanticField(min_length=1, max_length=64, description="事项编码")
    unit_code: str = PydanticField(min_length=1, max_length=64, description="单位编码")
    staff_no: str | None = PydanticField(default=None, min_length=1, max_length=64, description="工号 (window only)")
    applicant_type: ApplicantType
    service_channel: ServiceChannel
    completed_at: datetime
    applicant_phone: str | None = PydanticField(
        default=None,
        max_length=32,
        description="申请人手机号 (optional): kept encrypted for the rating invitation (短信邀评) of an unrated "
        "record, and as a keyed digest of its last four digits, so the applicant can rate at a window's QR code",
    )
    applicant_email: EmailStr | None = PydanticField(
        default=None,
        max_length=254,
        description="申请人电子邮箱 (optional): kept encrypted; the invitation goes by email when there is no phone",
    )
    bundle_no: str | None = PydanticField(
        default=None,
        min_length=1,
        max_length=64,
        description="批次号 (一次办多件) or 一件事 number shared by the records one rating covers, in the calling "
        "system's own numbering; with bundle_kind",
    )
    bundle_kind: BundleKind | None = PydanticField(
        default=None,
        description="visit 一次办多件 (one unit, one applicant) or theme 一件事 (one region, one applicant)",
    )
    theme_name: str | None = PydanticField(
        default=None, min_length=1, max_length=100, description="主题名称 of a theme bundle, e.g. 开办餐饮店一件事"
    )

    @field_validator("applicant_phone")
    @classmethod
    def _phone_digits(cls, value: str | None) -> str | None:
        if value is not None and not (_PHONE_RE.match(value) and len(re.sub(r"\D", "", value)) >= 7):
            raise ValueError("applicant_phone must be at least 7 digits, optionally with +, spaces or dashes")
        return value


class ServiceRecordRead(BaseModel):
    id: int
    record_no: str
    item_code: str
    unit_code: str
    staff_no: str | None
    applicant_type: ApplicantType = Field(sa_type=str_enum(ApplicantType))
    service_channel: ServiceChannel = Field(sa_type=str_enum(ServiceChannel))
    source_system: str
    completed_at: datetime
    applicant_phone: str | None = PydanticField(default=None, description="申请人手机号, masked (138****1234)")
    applicant_email: str | None = PydanticField(default=None, description="申请人电子邮箱, masked")
    bundle_no: str | None = None
    bundle_kind: BundleKind | None = None
    theme_name: str | None = None


PHONE_CHECK_DIGITS = 4


def phone_tail(phone: str) -> str:
    """The last four digits of a phone number, whatever separators it was written with."""
    return re.sub(r"\D", "", phone)[-PHONE_CHECK_DIGITS:]


def phone_check_digest(signing_key: str, record_no: str, tail: str) -> str:
    """HMAC of a record's phone tail under a key derived from the signing key.

    Four digits are only 10,000 values: a plain hash would fall to a lookup table, so the digest is
    keyed (a database copy alone cannot test guesses) and bound to the record number (equal tails of
    two records do not look equal). Changing HCP_SECRET_KEY invalidates every stored check.
    """
    key = hmac.new(signing_key.encode(), b"hcp/applicant-phone-check/v1", hashlib.sha256).digest()
    return hmac.new(key, f"{record_no}\x00{tail}".encode(), hashlib.sha256).hexdigest()
