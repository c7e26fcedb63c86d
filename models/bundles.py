"""Bundles (一次办多件, 一件事): the rules a service record must meet to join one when it is registered.

A bundle is the records one rating may cover (models/rating_coverage.py), numbered by the business
system that registers them (`bundle_no` is that system's own: two systems' numbers never meet):

- visit (一次办多件): the transactions an applicant did at one visit to one unit's hall or windows.
  All its records belong to that unit, so its one case goes to the unit that did every transaction.
- theme (一件事): the items of one 一件事 application, which by nature belong to several units; all in
  one region (one policy profile judges the one rating), under one theme name (主题名称). Its case
  goes to the unit of the record the rater rated.

Both: one applicant (the same applicant type and, where both records carry one, the same phone's
last four digits, compared through the keyed digest; no phone is stored), at most MAX_RECORDS records.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.organisation import Unit
from models.services import BundleKind, ServiceRecord, ServiceRecordCreate, phone_check_digest, phone_tail

# A rating of a bundle writes one row per record, in one transaction: a real visit or 一件事 has a handful.
MAX_RECORDS = 50


@dataclass(frozen=True)
class BundleRefused:
    """Why a record cannot join its bundle (422): the field at fault, in the API's words."""

    code: str
    message: str  # for people, in Chinese
    field: str


async def check_bundle(
    session: AsyncSession, body: ServiceRecordCreate, unit: Unit, source_system: str, signing_key: str
) -> BundleRefused | None:
    """Whether a new record may join the bundle it names; None when it names none or may."""
    if (body.bundle_no is None) != (body.bundle_kind is None):
        missing = "bundle_kind" if body.bundle_kind is None else "bundle_no"
        return BundleRefused("bundle_incomplete", "bundle_no 与 bundle_kind 须同时给出", missing)
    if body.theme_name is not None and body.bundle_kind != BundleKind.THEME:
        return BundleRefused(
            "theme_name_without_theme", "theme_name（主题名称）只用于一件事（bundle_kind = theme）", "theme_name"
        )
    if body.bundle_kind == BundleKind.THEME and body.theme_name is None:
        return BundleRefused(
            "theme_name_missing", "一件事（bundle_kind = theme）须给出 theme_name（主题名称）", "theme_name"
        )
    if body.bundle_no is None:
        return None
    members = (
        await session.exec(
            select(ServiceRecord, Unit.region_id)
            .join(Unit, col(Unit.id) == col(ServiceRecord.unit_id))
            .where(ServiceRecord.source_system == source_system, ServiceRecord.bundle_no == body.bundle_no)
            .order_by(col(ServiceRecord.id))
        )
    ).all()
    if not members:
        return None
    bundle = f"批次 {body.bundle_no}"
    if len(members) >= MAX_RECORDS:
        return BundleRefused(
            "bundle_full", f"{bundle} 已有 {len(members)} 个办件，一个批次最多 {MAX_RECORDS} 个", "bundle_no"
        )
    first, _ = members[0]
    if first.bundle_kind != body.bundle_kind:
        kind = "一件事" if first.bundle_kind == BundleKind.THEME else "一次办多件"
        return BundleRefused(
            "bundle_kind_mismatch", f"{bundle} 是{kind}（{first.bundle_kind}），不能混用", "bundle_kind"
        )
    if body.bundle_kind == BundleKind.THEME and first.theme_name != body.theme_name:
        return BundleRefused(
            "theme_name_mismatch", f"一件事 {body.bundle_no} 的主题名称是「{first.theme_name}」", "theme_name"
        )
    for member, region_id in members:
        refused = _same_place(bundle, body, unit, member, region_id) or _same_applicant(
            bundle, body, member, signing_key
        )
        if refused is not None:
            return refused
    return None


def _same_place(
    bundle: str, body: ServiceRecordCreate, unit: Unit, member: ServiceRecord, region_id: int
) -> BundleRefused | None:
    if body.bundle_kind == BundleKind.VISIT and member.unit_id != unit.id:
        return BundleRefused(
            "bundle_other_unit",
            f"{bundle}（一次办多件）的办件都属于同一单位；办件 {member.record_no} 属于另一单位，不能与 {body.unit_code} 同批",
            "unit_code",
        )
    if region_id != unit.region_id:
        return BundleRefused(
            "bundle_other_region",
            f"{bundle} 的办件都在同一行政区划（同一评价规则）；办件 {member.record_no} 在另一区划",
            "unit_code",
        )
    return None


def _same_applicant(
    bundle: str, body: ServiceRecordCreate, member: ServiceRecord, signing_key: str
) -> BundleRefused | None:
    if member.applicant_type != body.applicant_type:
        return BundleRefused(
            "bundle_other_applicant",
            f"{bundle} 的办件属于同一申请人；办件 {member.record_no} 的申请人类型不同",
            "applicant_type",
        )
    if body.applicant_phone and member.applicant_phone_check:
        digest = phone_check_digest(signing_key, member.record_no, phone_tail(body.applicant_phone))
        if digest != member.applicant_phone_check:
            return BundleRefused(
                "bundle_other_applicant",
                f"{bundle} 的办件属于同一申请人；申请人手机号与办件 {member.record_no} 的不符",
                "applicant_phone",
            )
    return None
