"""Request dependencies: the DB session, the caller (staff user or business system) and scope checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.security import credential_matches, decode_access_claims
from config import Settings
from models.audit import audit
from models.credentials import api_key_matches, api_key_prefix
from models.db import Database
from models.organisation import unit_subtree_ids
from models.users import ApiKey, Role, User
from runtime.temporal import TemporalConnection

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


# The app's shared objects. `async` although they await nothing: FastAPI runs a plain `def` dependency
# in a worker thread, a hand-off that cost every request more than the dependency itself.
async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_temporal(request: Request) -> TemporalConnection:
    return request.app.state.temporal


async def get_session(db: Annotated[Database, Depends(get_db)]) -> AsyncIterator[AsyncSession]:
    async with db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
TemporalDep = Annotated[TemporalConnection, Depends(get_temporal)]

_UNAUTHENTICATED = HTTPException(
    status_code=status.HTTP_401_UNAUTHORIZED,
    detail={"code": "not_authenticated", "message": "请先登录（Bearer token）"},
    headers={"WWW-Authenticate": "Bearer"},
)


async def user_from_token(token: str | None, session: AsyncSession, settings: Settings) -> User | None:
    """The active user a login token (bearer or page session) names, if it is valid and still current."""
    if not token:
        return None
    signing_key = settings.signing_key()
    claims = decode_access_claims(token, signing_key)
    if claims is None:
        return None
    user = await session.get(User, claims.user_id)
    if user is None or not user.active:
        return None
    # A token issued before the password last changed no longer matches: a reset logs out everywhere.
    return user if credential_matches(claims, user.password_hash, signing_key) else None


async def current_user(
    session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    """The logged-in staff user; 401 without a valid, unexpired token."""
    user = await user_from_token(token, session, settings)
    if user is None:
        raise _UNAUTHENTICATED
    return user


async def api_client_of_key(key: str | None, session: AsyncSession) -> ApiKey | None:
    """The unrevoked business-system key a presented key matches (X-API-Key, a rating device's login), else None."""
    if not key:
        return None
    prefix = api_key_prefix(key)
    if prefix is None:
        return None
    row = (await session.exec(select(ApiKey).where(ApiKey.prefix == prefix))).first()
    if row is None or row.revoked_at is not None or not api_key_matches(key, row.key_hash):
        return None
    return row


async def current_api_client(
    session: SessionDep, x_api_key: Annotated[str | None, Header(description="Business-system API key")] = None
) -> ApiKey:
    """The calling business system; 401 without a valid, unrevoked X-API-Key."""
    client = await api_client_of_key(x_api_key, session)
    if client is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail={"code": "invalid_api_key", "message": "缺少或无效的 X-API-Key"},
        )
    return client


@dataclass(frozen=True)
class Caller:
    """Either a staff user or a business system."""

    user: User | None = None
    api_client: ApiKey | None = None


async def current_user_or_api_client(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    x_api_key: Annotated[str | None, Header(description="Business-system API key")] = None,
) -> Caller:
    user = await user_from_token(token, session, settings)
    if user is not None:
        return Caller(user=user)
    client = await api_client_of_key(x_api_key, session)
    if client is not None:
        return Caller(api_client=client)
    raise _UNAUTHENTICATED


CurrentUser = Annotated[User, Depends(current_user)]
CurrentApiClient = Annotated[ApiKey, Depends(current_api_client)]
CurrentCaller = Annotated[Caller, Depends(current_user_or_api_client)]


async def visible_unit_ids(session: AsyncSession, user: User) -> set[int] | None:
    """Units whose cases the user may see: None means all (admin); empty means none."""
    if user.role == Role.ADMIN:
        return None
    if user.unit_id is None:
        return set()
    if user.role == Role.SUPERVISOR:
        return await unit_subtree_ids(session, user.unit_id)
    if user.role == Role.UNIT_STAFF:
        return {user.unit_id}
    return set()


async def current_admin(user: Annotated[User, Depends(current_user)]) -> User:
    """The logged-in user if an admin; 403 otherwise."""
    if user.role != Role.ADMIN:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail={"code": "admin_only", "message": "只有系统管理员可以执行此操作"},
        )
    return user


CurrentAdmin = Annotated[User, Depends(current_admin)]


def client_address(request: Request) -> str:
    """The caller's address for audit and rate limits (behind a proxy, uvicorn --proxy-headers sets it)."""
    return request.client.host if request.client else ""


def audit_user_action(
    session: AsyncSession,
    request: Request,
    user: User,
    action: str,
    target_type: str,
    target_id: object,
    **details: Any,
) -> None:
    """Stage an audit record of something a logged-in user did (commits with the change itself)."""
    audit(
        session,
        actor=f"user:{user.id}",
        actor_role=user.role.value,
        action=action,
        target_type=target_type,
        target_id=target_id,
        client=client_address(request),
        **details,
    )
