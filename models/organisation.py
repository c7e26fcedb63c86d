"""Regions (区划), responsible units (承办单位) and their staff (工作人员)."""

from __future__ import annotations

from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession


class Region(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=12, description="行政区划代码")
    name: str = Field(max_length=100)
    policy_code: str = Field(default="national", max_length=32, description="The policy profile its cases run under")


class Unit(SQLModel, table=True):
    """A responsible unit. parent_id points at the unit that supervises it (督办)."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    region_id: int = Field(foreign_key="region.id", index=True)
    parent_id: int | None = Field(default=None, foreign_key="unit.id", index=True)


class Staff(SQLModel, table=True):
    """A window or back-office worker who handles transactions and can be rated."""

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    staff_no: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=100)


async def unit_subtree_ids(session: AsyncSession, root_id: int) -> set[int]:
    """The unit and every unit below it. Unit trees are small (hundreds), so one query and a walk."""
    rows = (await session.exec(select(Unit.id, Unit.parent_id))).all()
    children: dict[int | None, list[int]] = {}
    for unit_id, parent_id in rows:
        assert unit_id is not None  # a primary key
        children.setdefault(parent_id, []).append(unit_id)
    found, frontier = {root_id}, [root_id]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found
