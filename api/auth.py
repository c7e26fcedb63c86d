"""Staff login (OAuth2 password flow) and who-am-I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlmodel import select

from api.deps import CurrentUser, SessionDep, SettingsDep
from api.security import DUMMY_PASSWORD_HASH, create_access_token, verify_password
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
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, settings: SettingsDep
) -> Token:
    """Exchange a username and password for a bearer token that expires."""
    user = (await session.exec(select(User).where(User.username == form.username))).first()
    password_ok = verify_password(form.password, user.password_hash if user else DUMMY_PASSWORD_HASH)
    if user is None or not password_ok or not user.active:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail={"code": "bad_credentials", "message": "用户名或密码错误"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    assert user.id is not None
    token, expires = create_access_token(user.id, settings.signing_key(), settings.access_token_minutes)
    return Token(access_token=token, expires_at=expires)


@router.get("/me", response_model=Me)
async def me(user: CurrentUser) -> Me:
    """The logged-in user."""
    assert user.id is not None
    return Me(id=user.id, username=user.username, display_name=user.display_name, role=user.role, unit_id=user.unit_id)
