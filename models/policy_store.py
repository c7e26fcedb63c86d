"""Policy versions in the database, and the profile files that seed them."""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint, func
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import UTCDateTime, utcnow
from models.policy import PinnedPolicy, PolicyProfile

PROFILE_DIR = Path(__file__).resolve().parent.parent / "policy" / "profiles"
DEFAULT_POLICY = "national"


class PolicyVersion(SQLModel, table=True):
    """One immutable version of a profile. Editing a profile adds a row; rows are never updated."""

    __table_args__ = (UniqueConstraint("code", "version", name="uq_policyversion_code_version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, index=True)
    version: int
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    origin: str = Field(max_length=20, description='"file" or "api"')
    created_by: int | None = Field(default=None, foreign_key="user.id")
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; everything else (numbers, strings, arrays) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value)
        else:
            merged[key] = value
    return merged


def load_profile_files(directory: Path = PROFILE_DIR) -> dict[str, PolicyProfile]:
    """Every profile file, with `extends` resolved and validated."""
    raw = {path.stem: tomllib.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.toml"))}

    def resolve(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if name in seen:
            raise ValueError(f"policy profiles extend each other in a loop: {' → '.join((*seen, name))}")
        if name not in raw:
            raise ValueError(f"policy profile {seen[-1] if seen else name!r} extends unknown profile {name!r}")
        data = dict(raw[name])
        parent = data.pop("extends", None)
        return _merge(resolve(parent, (*seen, name)), data) if parent else data

    profiles = {}
    for name in raw:
        try:
            profile = PolicyProfile.model_validate(resolve(name))
        except ValueError as exc:
            raise ValueError(f"{directory / name}.toml: {exc}") from exc
        if profile.code != name:
            raise ValueError(f"{directory / name}.toml declares code {profile.code!r}; the file name must match")
        profiles[name] = profile
    return profiles


async def sync_policy_files(session: AsyncSession) -> list[str]:
    """Load each file profile whose code the database does not have yet. Returns the codes added.

    A code already in the database is left alone: after the first load, profiles change through the
    admin API (each edit a new version), not by editing files under a running system.
    """
    known = set((await session.exec(select(PolicyVersion.code).distinct())).all())
    added = []
    for code, profile in load_profile_files().items():
        if code not in known:
            session.add(PolicyVersion(code=code, version=1, body=profile.model_dump(mode="json"), origin="file"))
            added.append(code)
    await session.commit()
    return added


# Versions never change once written, so a parsed version is kept for the life of the process, keyed
# with its creation time so a database that was reset (tests) cannot be served a stale parse. Rating
# intake then costs one small query instead of loading and validating a whole profile.
_parsed_versions: dict[tuple[str, int, datetime], PinnedPolicy] = {}


async def latest_policy(session: AsyncSession, code: str) -> PinnedPolicy | None:
    """The newest version of a profile."""
    return await _cached(
        session, select(PolicyVersion.version, PolicyVersion.created_at).where(PolicyVersion.code == code)
        .order_by(col(PolicyVersion.version).desc()).limit(1), code
    )  # fmt: skip


async def policy_version(session: AsyncSession, code: str, version: int) -> PinnedPolicy | None:
    """One version of a profile."""
    return await _cached(
        session,
        select(PolicyVersion.version, PolicyVersion.created_at).where(
            PolicyVersion.code == code, PolicyVersion.version == version
        ),
        code,
    )


async def _cached(session: AsyncSession, key_query: Any, code: str) -> PinnedPolicy | None:
    found = (await session.exec(key_query)).first()
    if found is None:
        return None
    version, created_at = found
    return await _parsed(session, code, version, created_at)


async def _parsed(session: AsyncSession, code: str, version: int, created_at: datetime) -> PinnedPolicy:
    key = (code, version, created_at)
    if key not in _parsed_versions:
        row = (
            await session.exec(
                select(PolicyVersion).where(PolicyVersion.code == code, PolicyVersion.version == version)
            )
        ).one()
        _parsed_versions[key] = _pinned(row)
    return _parsed_versions[key]


async def add_policy_version(
    session: AsyncSession, profile: PolicyProfile, actor_id: int | None, note: str = ""
) -> PolicyVersion:
    """Store an edited profile as the next version of its code (caller commits)."""
    current = (
        await session.exec(select(func.max(PolicyVersion.version)).where(PolicyVersion.code == profile.code))
    ).one()
    row = PolicyVersion(
        code=profile.code,
        version=(current or 0) + 1,
        body=profile.model_dump(mode="json"),
        origin="api",
        created_by=actor_id,
        note=note,
    )
    session.add(row)
    return row


def _pinned(row: PolicyVersion) -> PinnedPolicy:
    return PinnedPolicy(code=row.code, version=row.version, profile=PolicyProfile.model_validate(row.body))


async def policy_for_unit(session: AsyncSession, unit_id: int) -> PinnedPolicy:
    """The latest version of the profile the unit's region runs under (the national default if unset)."""
    from models.organisation import Region, Unit  # local: organisation imports nothing from here, keep it so

    # One query on the intake's path: the newest version of the region's profile, found by the unit.
    region_code = (
        select(Region.policy_code).join(Unit, col(Unit.region_id) == Region.id).where(Unit.id == unit_id)
    ).scalar_subquery()
    found = (
        await session.exec(
            select(PolicyVersion.code, PolicyVersion.version, PolicyVersion.created_at)
            .where(PolicyVersion.code == func.coalesce(region_code, DEFAULT_POLICY))
            .order_by(col(PolicyVersion.version).desc())
            .limit(1)
        )
    ).first()
    # A region naming a profile that has no version runs under the default, as an unset one does.
    pinned = await _parsed(session, *found) if found else await latest_policy(session, DEFAULT_POLICY)
    if pinned is None:
        raise RuntimeError("no policy profile is loaded; run the policy sync (make run does it at start)")
    return pinned
