"""Small, hand-countable datasets for the indicator tests: rows written directly, at chosen China times.

The demo seed gives the units (1 政务服务管理办公室 above 2 市场监管局 and 3 人社局, region 370600 on the
Yantai profile: scores 5/4/3/2/1), items 1–3 and staff 1 (unit 2) and 2 (unit 3). Its own records
are completed "now", far from the periods the tests use (2025).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.records import Case, CaseEvent
from models.case.vocabulary import Outcome, Stage
from models.db import Database
from models.organisation import Region, Unit
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ApplicantType, ServiceChannel, ServiceRecord

CHINA = timezone(timedelta(hours=8))
BAD_LEVELS = {RatingLevel.DISSATISFIED, RatingLevel.VERY_DISSATISFIED}
SCJ, RSJ, OFFICE = 2, 3, 1
SCJ_STAFF_MEMBER = 1


def cn(month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0, year: int = 2025) -> datetime:
    """A moment in China time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=CHINA)


class Rows:
    """Writes regions, units, records, ratings, cases and timeline events, numbered as they come."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._numbers = itertools.count(1)

    async def _add(self, row: Any) -> int:
        self.session.add(row)
        await self.session.flush()
        assert row.id is not None
        return int(row.id)

    async def region(self, code: str, policy: str) -> int:
        return await self._add(Region(code=code, name=f"区划{code}", policy_code=policy))

    async def unit(self, code: str, name: str, region_id: int = 1, parent_id: int | None = None) -> int:
        return await self._add(Unit(code=code, name=name, region_id=region_id, parent_id=parent_id))

    async def record(
        self, unit_id: int, completed: datetime, item_id: int = 1, staff_id: int | None = None, no: str = ""
    ) -> int:
        return await self._add(
            ServiceRecord(
                record_no=no or f"IND-{next(self._numbers):04d}",
                item_id=item_id,
                unit_id=unit_id,
                staff_id=staff_id,
                applicant_type=ApplicantType.INDIVIDUAL,
                service_channel=ServiceChannel.WINDOW if staff_id else ServiceChannel.ONLINE,
                source_system="demo-hall",
                completed_at=completed,
            )
        )

    async def rating(
        self,
        record_id: int,
        level: RatingLevel,
        at: datetime,
        channel: RatingChannel = RatingChannel.PC,
        target: RatingTarget = RatingTarget.ITEM,
        follow_up: int = 0,
        adopted: bool = True,
        real_name: bool = False,
        lead: int | None = None,
    ) -> int:
        return await self._add(
            Rating(
                record_id=record_id,
                level=level,
                channel=channel,
                target=target,
                follow_up=follow_up,
                adopted=adopted,
                real_name=real_name,
                rater_phone="13900001111" if real_name else None,
                lead_rating_id=lead,
                is_bad=level in BAD_LEVELS,
                source_system="demo-hall",
                submitted_at=at,
            )
        )

    async def case(
        self,
        rating_id: int,
        unit_id: int,
        opened: datetime,
        stage: Stage = Stage.CLOSED,
        outcome: Outcome | None = None,
        overdue: bool = False,
        rung: int = 0,
        round_: int = 1,
    ) -> int:
        return await self._add(
            Case(
                rating_id=rating_id,
                unit_id=unit_id,
                workflow_id=f"indicators-case-{rating_id}",
                stage=stage,
                outcome=outcome,
                overdue=overdue,
                escalation_rung=rung,
                round=round_,
                policy_code="yantai",
                policy_version=1,
                opened_at=opened,
            )
        )

    async def events(
        self, case_id: int, *steps: tuple[str, Stage, datetime] | tuple[str, Stage, datetime, dict]
    ) -> None:
        """Timeline events in order: (action, stage after it, when[, data])."""
        for number, step in enumerate(steps, start=1):
            action, stage, at = step[0], step[1], step[2]
            data = step[3] if len(step) > 3 else {}
            await self._add(
                CaseEvent(
                    case_id=case_id,
                    event_key=f"{number:04d}-{action}",
                    stage=stage,
                    action=action,
                    actor="system",
                    at=at,
                    data=data,
                )
            )


@asynccontextmanager
async def rows(db: Database) -> AsyncIterator[Rows]:
    async with db.session() as session:
        yield Rows(session)
        await session.commit()


async def report(api: httpx.AsyncClient, headers: dict[str, str], **params: object) -> dict[str, Any]:
    response = await api.get("/api/v1/indicators", params={k: str(v) for k, v in params.items()}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def counts(group: dict[str, Any]) -> dict[str, int | None]:
    return {name: count["value"] for name, count in group["counts"].items()}


def value(group: dict[str, Any], indicator: str) -> float | None:
    return group["indicators"][indicator]["value"]


def by_key(body: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    return {group["key"]: group for group in body["groups"]}
