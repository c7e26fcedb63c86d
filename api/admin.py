"""Administration (系统管理): users, units and business-system API keys. Admins only; every change audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, EmailStr, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentAdmin, SessionDep, audit_user_action
from api.errors import api_error, error_responses
from api.params import MAX_ID, IdPath
from models.credentials import hash_password, new_api_key
from models.db import utcnow
from models.organisation import Region, Unit
from models.request_body import RequestBody
from models.roles import Role
from models.users import ApiKey, User

router = APIRouter(prefix="/api/v1/admin", tags=["administration"])

_PASSWORD = Field(min_length=12, max_length=200, description="At least 12 characters")


class UserRead(BaseModel):
    id: int
    username: str
    display_name: str
    email: str | None
    role: Role
    unit_id: int | None
    active: bool
    locked_until: datetime | None


class UserCreate(RequestBody):
    username: str = Field(pattern=r"^[a-zA-Z0-9_.-]{3,64}$")
    display_name: str = Field(min_length=1, max_length=100)
    email: EmailStr | None = None
    role: Role
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    password: str = _PASSWORD


# None, as the default of a field typed without None (see UserUpdate); Any so the type checker accepts it.
_ABSENT: Any = None


class UserUpdate(RequestBody):
    """Only the fields sent change. ``email`` and ``unit_id`` may be null (cleared); the others may not."""

    # Typed without None on purpose: an explicit null is refused with a 422 naming the field,
    # and the schema says so; a default is never validated, so leaving a field out still works.
    display_name: str = Field(default=_ABSENT, min_length=1, max_length=100)
    email: EmailStr | None = None
    role: Role = Field(default=_ABSENT)
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    active: bool = Field(default=_ABSENT)
    password: str = Field(default=_ABSENT, min_length=12, max_length=200, description="A new password")
    unlock: bool = False


class UnitRead(BaseModel):
    id: int
    code: str
    name: str
    region_id: int
    parent_id: int | None


class UnitCreate(RequestBody):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{2,64}$")
    name: str = Field(min_length=1, max_length=200)
    region_code: str
    parent_code: str | None = None


class ApiKeyRead(BaseModel):
    id: int
    name: str
    source_system: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreate(RequestBody):
    name: str = Field(min_length=1, max_length=100)
    source_system: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="Shown once; only a hash is stored")


def _user_read(user: User) -> UserRead:
    assert user.id is not None
    return UserRead(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        role=user.role,
        unit_id=user.unit_id,
        active=user.active,
        locked_until=user.locked_until,
    )


def _visible_fields(user: User) -> dict[str, Any]:
    """A user as the audit log records it: never the password hash."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role.value,
        "unit_id": user.unit_id,
        "active": user.active,
    }


async def _check_unit_for_role(session: AsyncSession, role: Role, unit_id: int | None) -> None:
    if role in (Role.UNIT_STAFF, Role.SUPERVISOR, Role.REVIEWER) and unit_id is None:
        # Reviewers belong to an office too: they decide only appeals of the units below it.
        raise api_error(422, "unit_required", "承办人员、督办人员和复核人员须属于一个单位", field="unit_id")
    if unit_id is not None and await session.get(Unit, unit_id) is None:
        raise api_error(422, "unknown_unit", f"单位 {unit_id} 不存在", field="unit_id")


@router.get("/users", response_model=list[UserRead])
async def list_users(session: SessionDep, _admin: CurrentAdmin) -> list[UserRead]:
    """Every staff account."""
    return [_user_read(u) for u in (await session.exec(select(User).order_by(col(User.id)))).all()]


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def create_user(body: UserCreate, request: Request, session: SessionDep, admin: CurrentAdmin) -> UserRead:
    """Create a staff account with a role and a unit scope."""
    await _check_unit_for_role(session, body.role, body.unit_id)
    user = User(
        username=body.username,
        display_name=body.display_name,
        email=str(body.email) if body.email else None,
        role=body.role,
        unit_id=body.unit_id,
        password_hash=hash_password(body.password),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise api_error(409, "username_taken", f"用户名 {body.username} 已存在", field="username") from None
    audit_user_action(
        session, request, admin, "user.create", "user", user.id, unit_id=user.unit_id, after=_visible_fields(user)
    )
    await session.commit()
    return _user_read(user)


@router.patch("/users/{user_id}", response_model=UserRead)
async def update_user(
    user_id: IdPath, body: UserUpdate, request: Request, session: SessionDep, admin: CurrentAdmin
) -> UserRead:
    """Change a user's role, unit, contact or state; reset a password; lift a login lock."""
    user = await session.get(User, user_id)
    if user is None:
        raise api_error(404, "not_found", f"用户 {user_id} 不存在")
    before = _visible_fields(user)
    changes = body.model_dump(exclude_unset=True, exclude={"password", "unlock"})
    role = changes.get("role", user.role)
    unit_id = changes.get("unit_id", user.unit_id)
    await _check_unit_for_role(session, role, unit_id)
    if user.id == admin.id and (changes.get("active") is False or role != Role.ADMIN):
        raise api_error(422, "self_lockout", "不能停用自己或取消自己的管理员角色")
    for name, value in changes.items():
        setattr(user, name, str(value) if name == "email" and value is not None else value)
    if body.password is not None:
        user.password_hash = hash_password(body.password)
    if body.unlock:
        user.locked_until, user.failed_logins = None, 0
    session.add(user)
    after = {**_visible_fields(user), "password_changed": body.password is not None, "unlocked": body.unlock}
    audit_user_action(
        session, request, admin, "user.update", "user", user.id, unit_id=user.unit_id, before=before, after=after
    )
    await session.commit()
    return _user_read(user)


@router.get("/units", response_model=list[UnitRead])
async def list_units(session: SessionDep, _admin: CurrentAdmin) -> list[UnitRead]:
    """The unit tree, as rows with their parent."""
    rows = (await session.exec(select(Unit).order_by(col(Unit.id)))).all()
    return [UnitRead.model_validate(u, from_attributes=True) for u in rows]


@router.post("/units", response_model=UnitRead, status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def create_unit(body: UnitCreate, request: Request, session: SessionDep, admin: CurrentAdmin) -> UnitRead:
    """Add a unit under a supervising unit (or a new top-level office)."""
    region = (await session.exec(select(Region).where(Region.code == body.region_code))).first()
    if region is None:
        raise api_error(422, "unknown_region", f"区划 {body.region_code} 不存在", field="region_code")
    assert region.id is not None
    parent = None
    if body.parent_code is not None:
        parent = (await session.exec(select(Unit).where(Unit.code == body.parent_code))).first()
        if parent is None:
            raise api_error(422, "unknown_unit", f"上级单位 {body.parent_code} 不存在", field="parent_code")
    unit = Unit(code=body.code, name=body.name, region_id=region.id, parent_id=parent.id if parent else None)
    session.add(unit)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise api_error(409, "unit_exists", f"单位编码 {body.code} 已存在", field="code") from None
    audit_user_action(session, request, admin, "unit.create", "unit", unit.id, unit_id=unit.id, after=body.model_dump())
    await session.commit()
    return UnitRead.model_validate(unit, from_attributes=True)


@router.get("/api-keys", response_model=list[ApiKeyRead])
async def list_api_keys(session: SessionDep, _admin: CurrentAdmin) -> list[ApiKeyRead]:
    """Every business-system key (never the secret)."""
    rows = (await session.exec(select(ApiKey).order_by(col(ApiKey.id)))).all()
    return [ApiKeyRead.model_validate(k, from_attributes=True) for k in rows]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, request: Request, session: SessionDep, admin: CurrentAdmin
) -> ApiKeyCreated:
    """Issue a key for a business system. The key is in this response only."""
    full, prefix, key_hash = new_api_key()
    key = ApiKey(name=body.name, source_system=body.source_system, prefix=prefix, key_hash=key_hash)
    session.add(key)
    await session.flush()
    audit_user_action(
        session, request, admin, "apikey.create", "api_key", key.id, after={**body.model_dump(), "prefix": prefix}
    )
    await session.commit()
    return ApiKeyCreated(**ApiKeyRead.model_validate(key, from_attributes=True).model_dump(), key=full)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyRead)
async def revoke_api_key(key_id: IdPath, request: Request, session: SessionDep, admin: CurrentAdmin) -> ApiKeyRead:
    """Revoke a key: it stops working at once."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise api_error(404, "not_found", f"API key {key_id} 不存在")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        audit_user_action(session, request, admin, "apikey.revoke", "api_key", key.id, after={"prefix": key.prefix})
        await session.commit()
    return ApiKeyRead.model_validate(key, from_attributes=True)
