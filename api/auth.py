"""Staff login (OAuth2 password flow) and who-am-I."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CurrentUser, SessionDep, SettingsDep, client_address
from api.security import create_access_token
from config import Settings
from models.audit import audit
from models.credentials import DUMMY_PASSWORD_HASH, verify_password
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


_BAD_CREDENTIALS = {"code": "bad_credentials", "message": "用户名或密码错误"}


@router.post("/token", response_model=Token)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, session: SessionDep, settings: SettingsDep
) -> Token:
    """Exchange a username and password for a bearer token that expires."""
    user = await authenticate(session, settings, form.username, form.password, client_address(request))
    assert user.id is not None
    token, expires = create_access_token(
        user.id, settings.signing_key(), settings.access_token_minutes, password_hash=user.password_hash
    )
    return Token(access_token=token, expires_at=expires)


async def authenticate(session: AsyncSession, settings: Settings, username: str, password: str, client: str) -> User:
    """The active user with this username and password; 401 otherwise, 429 while locked.

    The one check behind API tokens and page sessions alike. Each attempt is counted in the database
    before the password is checked, so concurrent guesses cannot outrun the limit: an attempt
    numbered past `login_max_failures` is refused unchecked.
    """
    user = (await session.exec(select(User).where(User.username == username))).first()
    if user is None:
        # An unknown username costs an argon2 verification too, so timing does not reveal which names exist.
        await run_in_threadpool(verify_password, password, DUMMY_PASSWORD_HASH)
        raise _bad_credentials()
    assert user.id is not None
    password_hash = user.password_hash
    attempt = await _reserve_attempt(session, user.id)
    if attempt is None or attempt > settings.login_max_failures:
        if attempt is not None:
            # Normally the attempt that used up the limit has locked the account (or is about to); this
            # also covers one that never finished, which would otherwise leave the account refused for good.
            await _lock(session, settings, user, client)
        raise await _locked(session, settings, user.id)
    # argon2 is slow on purpose: off the event loop, so other requests are not stalled behind it.
    password_ok = await run_in_threadpool(verify_password, password, password_hash)
    if not password_ok:
        if attempt >= settings.login_max_failures:
            await _lock(session, settings, user, client)
        raise _bad_credentials()
    await _reset_attempts(session, user.id)
    if not user.active:
        raise _bad_credentials()
    return user


def _bad_credentials() -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=dict(_BAD_CREDENTIALS), headers={"WWW-Authenticate": "Bearer"}
    )


async def _reserve_attempt(session: AsyncSession, user_id: int) -> int | None:
    """Count one more attempt and return its number; None while the account is locked.

    One UPDATE … RETURNING: the database serialises concurrent attempts on the row, so each gets
    its own number (PostgreSQL, and SQLite since 3.35).
    """
    now = utcnow()
    reserved = await session.exec(
        update(User)
        .where(col(User.id) == user_id, or_(col(User.locked_until).is_(None), col(User.locked_until) <= now))
        .values(failed_logins=col(User.failed_logins) + 1)
        .returning(col(User.failed_logins))
        .execution_options(synchronize_session=False)
    )
    number = reserved.scalar_one_or_none()
    await session.commit()
    return number


async def _reset_attempts(session: AsyncSession, user_id: int) -> None:
    await session.exec(
        update(User).where(col(User.id) == user_id).values(failed_logins=0).execution_options(synchronize_session=False)
    )
    await session.commit()


async def _lock(session: AsyncSession, settings: Settings, user: User, client: str) -> None:
    """Lock the account unless it already is; only the request whose UPDATE took effect audits it."""
    now = utcnow()
    locked_until = now + timedelta(minutes=settings.login_lock_minutes)
    locked = await session.exec(
        update(User)
        .where(col(User.id) == user.id, or_(col(User.locked_until).is_(None), col(User.locked_until) <= now))
        .values(locked_until=locked_until, failed_logins=0)
        .execution_options(synchronize_session=False)
    )
    if locked.rowcount == 1:
        audit(
            session,
            actor="system",
            action="auth.locked",
            actor_role="",
            target_type="user",
            target_id=user.id,
            unit_id=user.unit_id,
            reason=f"{settings.login_max_failures} 次密码错误",
            after={"locked_until": locked_until.isoformat()},
            client=client,
        )
    await session.commit()


async def _locked(session: AsyncSession, settings: Settings, user_id: int) -> HTTPException:
    """The 429 for a locked account, with the time left (read fresh: another request may have set it)."""
    now = utcnow()
    locked_until = (await session.exec(select(User.locked_until).where(col(User.id) == user_id))).first()
    if locked_until is not None and locked_until > now:
        minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
    else:
        minutes = settings.login_lock_minutes
    return HTTPException(
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        detail={"code": "account_locked", "message": f"密码错误次数过多，账户已临时锁定，请 {minutes} 分钟后再试"},
        headers={"Retry-After": str(minutes * 60)},
    )


@router.get("/me", response_model=Me)
async def me(user: CurrentUser) -> Me:
    """The logged-in user."""
    assert user.id is not None
    return Me(id=user.id, username=user.username, display_name=user.display_name, role=user.role, unit_id=user.unit_id)
