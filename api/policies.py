"""Policy profiles (政策配置): read by any staff user, edited by admins; each edit is a new version."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import CurrentAdmin, CurrentUser, SessionDep, audit_user_action
from api.errors import api_error
from api.params import CodePath, Version
from models.organisation import Region
from models.policy import PolicyProfile
from models.policy_store import PolicyVersion, add_policy_version, latest_policy
from models.request_body import RequestBody

router = APIRouter(prefix="/api/v1", tags=["policy"])


class PolicyVersionRead(BaseModel):
    code: str
    version: int
    origin: str
    created_by: int | None
    note: str
    created_at: datetime
    profile: PolicyProfile


class PolicyEdit(RequestBody):
    profile: PolicyProfile
    note: str = Field(min_length=1, max_length=500, description="Why it changed (shown in the version list)")


class RegionPolicy(RequestBody):
    policy_code: str = Field(min_length=1, max_length=32)


def _read(row: PolicyVersion) -> PolicyVersionRead:
    return PolicyVersionRead(
        code=row.code,
        version=row.version,
        origin=row.origin,
        created_by=row.created_by,
        note=row.note,
        created_at=row.created_at,
        profile=PolicyProfile.model_validate(row.body),
    )


@router.get("/policies", response_model=list[PolicyVersionRead])
async def list_policies(session: SessionDep, _user: CurrentUser) -> list[PolicyVersionRead]:
    """The latest version of every profile."""
    rows = (
        await session.exec(select(PolicyVersion).order_by(col(PolicyVersion.code), col(PolicyVersion.version)))
    ).all()
    latest: dict[str, PolicyVersion] = {row.code: row for row in rows}
    return [_read(row) for row in latest.values()]


@router.get("/policies/{code}/versions", response_model=list[PolicyVersionRead])
async def list_policy_versions(code: CodePath, session: SessionDep, _user: CurrentUser) -> list[PolicyVersionRead]:
    """Every version of one profile, oldest first."""
    rows = (
        await session.exec(select(PolicyVersion).where(PolicyVersion.code == code).order_by(col(PolicyVersion.version)))
    ).all()
    if not rows:
        raise api_error(404, "unknown_policy", f"政策配置 {code} 不存在")
    return [_read(row) for row in rows]


@router.get("/policies/{code}", response_model=PolicyVersionRead)
async def get_policy(
    code: CodePath, session: SessionDep, _user: CurrentUser, version: Version = None
) -> PolicyVersionRead:
    """One profile: the latest version, or ?version=n."""
    query = select(PolicyVersion).where(PolicyVersion.code == code)
    query = (
        query.where(PolicyVersion.version == version) if version else query.order_by(col(PolicyVersion.version).desc())
    )
    row = (await session.exec(query.limit(1))).first()
    if row is None:
        raise api_error(404, "unknown_policy", f"政策配置 {code}{f' v{version}' if version else ''} 不存在")
    return _read(row)


@router.put("/policies/{code}", response_model=PolicyVersionRead, status_code=status.HTTP_201_CREATED)
async def edit_policy(
    code: CodePath, body: PolicyEdit, request: Request, session: SessionDep, admin: CurrentAdmin
) -> PolicyVersionRead:
    """Save an edited profile as its next version. Running cases keep the version they started under."""
    if body.profile.code != code:
        raise api_error(422, "code_mismatch", f"profile.code 须与路径中的 {code} 一致", field="profile.code")
    previous = await latest_policy(session, code)
    row = await add_policy_version(session, body.profile, admin.id, body.note)
    audit_user_action(
        session,
        request,
        admin,
        "policy.edit",
        "policy",
        f"{code}@v{row.version}",
        reason=body.note,
        before=previous.profile.model_dump(mode="json") if previous else {},
        after=body.profile.model_dump(mode="json"),
    )
    await session.commit()
    return _read(row)


@router.put("/regions/{region_code}/policy", response_model=RegionPolicy)
async def set_region_policy(
    region_code: CodePath, body: RegionPolicy, request: Request, session: SessionDep, admin: CurrentAdmin
) -> RegionPolicy:
    """Choose the profile new cases of a region run under."""
    region = (await session.exec(select(Region).where(Region.code == region_code))).first()
    if region is None:
        raise api_error(404, "unknown_region", f"区划 {region_code} 不存在")
    if await latest_policy(session, body.policy_code) is None:
        raise api_error(422, "unknown_policy", f"政策配置 {body.policy_code} 不存在", field="policy_code")
    audit_user_action(
        session,
        request,
        admin,
        "region.policy",
        "region",
        region_code,
        before={"policy_code": region.policy_code},
        after={"policy_code": body.policy_code},
    )
    region.policy_code = body.policy_code
    session.add(region)
    await session.commit()
    return RegionPolicy(policy_code=region.policy_code)
