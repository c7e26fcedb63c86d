"""Staff login (OAuth2 password flow) and who-am-I."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentUser, SessionDep, SettingsDep, client_address
from api.security import DUMMY_PASSWORD_HASH, create_access_token, verify_password
from config import Settings
from models.audit import audit
from models.db import utcnow
from models.users import Role, User

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    unit_id: int | None


@router.post("/token", response_model=Token)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, session: SessionDep, settings: SettingsDep
) -> Token:
    """Exchange a username and password for a bearer token that expires."""
    user = (await session.exec(select(User).where(User.username == form.username))).first()
    now = utcnow()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail={"code": "account_locked", "message": f"密码错误次数过多，账户已临时锁定，请 {minutes} 分钟后再试"},
            headers={"Retry-After": str(minutes * 60)},
        )
    password_ok = verify_password(form.password, user.password_hash if user else DUMMY_PASSWORD_HASH)
    if user is None or not password_ok or not user.active:
        if user is not None and not password_ok:
            await _count_failure(session, settings, user, client_address(request))
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail={"code": "bad_credentials", "message": "用户名或密码错误"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    assert user.id is not None
    if user.failed_logins:
        user.failed_logins = 0
        session.add(user)
        await session.commit()
    token, expires = create_access_token(user.id, settings.signing_key(), settings.access_token_minutes)
    return Token(access_token=token, expires_at=expires)


async def _count_failure(session: AsyncSession, settings: Settings, user: User, client: str) -> None:
    """One more wrong password; at the limit the account locks for a while (and that is audited)."""
    user.failed_logins += 1
    if user.failed_logins >= settings.login_max_failures:
        user.failed_logins = 0
        user.locked_until = utcnow() + timedelta(minutes=settings.login_lock_minutes)
        audit(
            session,
            actor="system",
            action="auth.locked",
            actor_role="",
            target_type="user",
            target_id=user.id,
            unit_id=user.unit_id,
            reason=f"{settings.login_max_failures} 次密码错误",
            after={"locked_until": user.locked_until.isoformat()},
            client=client,
        )
    session.add(user)
    await session.commit()


@router.get("/me", response_model=Me)
async def me(user: CurrentUser) -> Me:
    """The logged-in user."""
    assert user.id is not None
    return Me(id=user.id, username=user.username, display_name=user.display_name, role=user.role, unit_id=user.unit_id)
