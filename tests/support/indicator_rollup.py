"""The rollup tests' tools: the rollup against the raw tables for every grouping and filter, and a random dataset.

`assert_rollup_is_raw` reads every count of every group twice, from the raw tables (compute.py, as a
report without the rollup does) and from the rollup (rollup_read.py), for each grouping the rollup
serves and each filter made of its keys, and holds them equal.
"""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from models.case.records import Case, CaseEvent
from models.case.vocabulary import Outcome, Stage
from models.db import Database
from models.indicators.compute import GroupCounts, GroupKey, count_groups
from models.indicators.definitions import Dimension
from models.indicators.filters import IndicatorFilter
from models.indicators.periods import Period
from models.indicators.rollup_read import rollup_groups
from models.indicators.rollup_tables import ROLLUP_TABLES
from models.organisation import Region, Unit, unit_subtree_ids
from models.ratings import Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ServiceRecord
from tests.support.indicator_data import BAD_LEVELS, Rows, cn

SERVED = [d for d in Dimension if d not in (Dimension.ITEM, Dimension.STAFF)]
Comparable = dict[GroupKey, tuple[dict[str, int | None], dict[tuple[str, str], int]]]


def comparable(groups: dict[GroupKey, GroupCounts]) -> Comparable:
    """Counts, and ratings by (profile, level) without the empty ones (they weigh nothing in a score)."""
    return {key: (g.counts, {k: n for k, n in g.rated_levels.items() if n}) for key, g in groups.items()}


async def rollup_filters(db: Database, period: Period, light: bool = False) -> list[IndicatorFilter]:
    """A period unfiltered, subtrees and single units, each region, channels, targets and both.

    `light`: unfiltered, unit 2 alone, a channel and the staff target (a check after each write).
    """
    async with db.session() as session:
        units = sorted(u for u in (await session.exec(select(Unit.id))).all() if u is not None)
        regions = sorted(r for r in (await session.exec(select(Region.id))).all() if r is not None)
        subtrees = {unit: frozenset(await unit_subtree_ids(session, unit)) for unit in units}
    found = [IndicatorFilter(period=period)]
    if light:
        found += [IndicatorFilter(period=period, units=frozenset({2}))]
        channels, targets = [RatingChannel.PC], [RatingTarget.STAFF]
    else:
        found += [IndicatorFilter(period=period, units=tree) for tree in subtrees.values() if len(tree) > 1]
        found += [IndicatorFilter(period=period, units=frozenset({unit})) for unit in units]
        found += [IndicatorFilter(period=period, region_id=region) for region in regions]
        channels, targets = [RatingChannel.PC, RatingChannel.SYSTEM_DEFAULT], list(RatingTarget)
        found += [
            IndicatorFilter(period=period, units=subtrees[2], channel=RatingChannel.PC, target=RatingTarget.ITEM),
            IndicatorFilter(period=period, region_id=regions[-1], target=RatingTarget.STAFF),
        ]
    found += [IndicatorFilter(period=period, channel=channel) for channel in channels]
    found += [IndicatorFilter(period=period, target=target) for target in targets]
    return found


async def assert_rollup_is_raw(db: Database, periods: list[Period], light: bool = False) -> int:
    """Every served grouping of every filter of each period: rollup == raw. Returns the non-zero counts compared."""
    compared = 0
    for period in periods:
        for flt in await rollup_filters(db, period, light):
            for dimension in SERVED:
                async with db.session() as session:
                    raw = comparable(await count_groups(session, flt, dimension))
                    rolled = comparable(await rollup_groups(session, flt, dimension))
                assert rolled == raw, _difference(raw, rolled, flt, dimension)
                compared += sum(1 for counts, _ in raw.values() for n in counts.values() if n)
    return compared


def _difference(raw: Comparable, rolled: Comparable, flt: IndicatorFilter, dimension: Dimension) -> str:
    lines = [f"rollup differs from raw, {dimension.value}, {flt}:"]
    for key in sorted(set(raw) | set(rolled), key=str):
        mine, theirs = rolled.get(key), raw.get(key)
        if mine == theirs:
            continue
        if mine is None or theirs is None:
            lines.append(f"  group {key!r}: rollup {mine is not None}, raw {theirs is not None}")
            continue
        counts = {n: (mine[0][n], theirs[0][n]) for n in theirs[0] if mine[0].get(n) != theirs[0][n]}
        lines.append(f"  group {key!r}: (rollup, raw) {counts} levels {mine[1]} vs {theirs[1]}")
    return "\n".join(lines)


async def rollup_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every rollup table, in key order: two builds compare equal row for row."""
    found = {}
    async with db.engine.connect() as conn:
        for table in ROLLUP_TABLES:
            keys = ", ".join(c.name for c in table.primary_key.columns)
            rows = await conn.execute(text(f"SELECT * FROM {table.name} ORDER BY {keys}"))
            found[table.name] = [tuple(row) for row in rows.all()]
    return found


# --- a random dataset: two regions on different score scales, a unit tree, China-midnight edges ---
_EVENT_SCRIPTS: list[list[tuple[str, Stage, dict[str, Any]]]] = [
    [("accepted", Stage.VERIFICATION, {}), ("callback", Stage.VERIFICATION, {})],
    [("verified", Stage.RECTIFICATION, {}), ("rectified", Stage.FEEDBACK, {})],
    [
        ("verified", Stage.RECTIFICATION, {}),
        ("overdue", Stage.RECTIFICATION, {"deadline": "rectification_immediate", "rung": 1}),
        ("rectified", Stage.FEEDBACK, {}),
    ],  # fmt: skip
    [
        ("overdue", Stage.VERIFICATION, {"deadline": "verification", "rung": 1}),
        ("escalated", Stage.VERIFICATION, {"deadline": "verification", "rung": 2}),
    ],  # fmt: skip
    [("verified", Stage.RECTIFICATION, {}), ("cannot_rectify_requested", Stage.RECTIFICATION, {})],
    [("cannot_rectify_approved", Stage.CLOSED, {})],
    [("cannot_rectify_refused", Stage.RECTIFICATION, {}), ("cannot_rectify_requested", Stage.RECTIFICATION, {})],
    [("appeal_filed", Stage.APPEAL_REVIEW, {})],
    [("appeal_filed", Stage.APPEAL_REVIEW, {}), ("appeal_upheld", Stage.NOT_ADOPTED, {})],
    [("appeal_filed", Stage.APPEAL_REVIEW, {}), ("appeal_rejected", Stage.RECTIFICATION, {})],
]
_CASE_STATES = [
    (Stage.CLOSED, Outcome.SATISFIED),
    (Stage.CLOSED, Outcome.SATISFIED_BY_SILENCE),
    (Stage.CLOSED, Outcome.UNSATISFIED),
    (Stage.CLOSED, Outcome.CANNOT_RECTIFY),
    (Stage.NOT_ADOPTED, Outcome.NOT_ADOPTED),
    (Stage.RECTIFICATION, None),
    (Stage.VERIFICATION, None),
    (Stage.APPEAL_REVIEW, None),
    (Stage.ASSIGNED, None),
]


def random_moment(rng: random.Random, first: date, days: int) -> datetime:
    """A China time in [first, first + days), often a second either side of China or UTC midnight."""
    day = first + timedelta(days=rng.randrange(days))
    edge = rng.random()
    if edge < 0.15:
        return cn(day.month, day.day, 23, 59, 59, year=day.year)
    if edge < 0.3:
        return cn(day.month, day.day, 0, 0, 0, year=day.year)
    if edge < 0.4:
        return cn(day.month, day.day, 8, 0, 0, year=day.year)  # UTC midnight
    return cn(day.month, day.day, rng.randrange(24), rng.randrange(60), year=day.year)


class RandomData:
    """Writes random records, ratings, follow-ups, bundles, cases and timelines; remembers what it wrote."""

    def __init__(self, r: Rows, rng: random.Random, first: date, days: int) -> None:
        self.r, self.rng, self.first, self.days = r, rng, first, days
        self.units: list[int] = []
        self.ratings: list[int] = []
        self.cases: list[int] = []
        self.rated: list[tuple[int, int]] = []  # (record, its first item rating's follow-ups so far)
        self.follow_ups: list[int] = []
        self._keys = itertools.count(1)

    async def units_and_regions(self) -> None:
        """Beside the demo's units 1–3 (烟台, 5-point scores): unit 4 below 2, and 汕尾 (10-point) with two units."""
        shanwei = await self.r.region("441500", "shanwei")
        below = await self.r.unit("RND-SCJ-KFQ", "市场监管局开发区分局", parent_id=2)
        top = await self.r.unit("RND-SW", "汕尾市政务服务管理局", region_id=shanwei)
        under = await self.r.unit("RND-SW-RSJ", "汕尾市人社局", region_id=shanwei, parent_id=top)
        self.units = [1, 2, 3, below, top, under]

    async def transaction(self) -> None:
        rng, r = self.rng, self.r
        unit = rng.choice(self.units)
        staff = {2: 1, 3: 2}.get(unit) if rng.random() < 0.5 else None
        completed = random_moment(rng, self.first, self.days)
        record = await r.record(unit, completed, rng.randint(1, 3), staff, no=f"RND-{next(self._keys):05d}")
        if rng.random() < 0.15:
            return  # unrated
        at = completed + timedelta(hours=rng.choice([0, 1, 5, 20, 30]))
        level = rng.choice(list(RatingLevel))
        channel = rng.choice(list(RatingChannel))
        adopted, real_name = rng.random() < 0.9, rng.random() < 0.4
        lead = await r.rating(record, level, at, channel=channel, adopted=adopted, real_name=real_name)
        self.ratings.append(lead)
        self.rated.append((record, 0))
        if rng.random() < 0.08:  # a bundle: the rating copied onto a second record of the unit
            copy = await r.record(unit, completed, rng.randint(1, 3), no=f"RND-{next(self._keys):05d}")
            self.ratings.append(await r.rating(copy, level, at, channel=channel, adopted=adopted, lead=lead))
            self.rated.append((copy, 0))
        if staff is not None and rng.random() < 0.5:
            staff_level = rng.choice(list(RatingLevel))
            self.ratings.append(await r.rating(record, staff_level, at, channel=channel, target=RatingTarget.STAFF))
        if level in BAD_LEVELS and rng.random() < 0.9:
            await self.case(lead, unit, at)

    async def case(self, rating: int, unit: int, opened: datetime) -> None:
        rng = self.rng
        stage, outcome = rng.choice(_CASE_STATES)
        at_unit = rng.choice(self.units) if rng.random() < 0.1 else unit  # reassigned (改派)
        overdue = stage not in (Stage.CLOSED, Stage.NOT_ADOPTED) and rng.random() < 0.4
        case = await self.r.case(
            rating, at_unit, opened, stage, outcome, overdue, rng.randint(1, 3) if overdue else 0, rng.randint(1, 2)
        )
        self.cases.append(case)
        await self.events(case, opened)

    async def events(self, case: int, after: datetime) -> None:
        """One of the scripts above, three hours apart (a case given more later gets keys of its own)."""
        for n, (action, stage, data) in enumerate(self.rng.choice(_EVENT_SCRIPTS), start=1):
            self.r.session.add(
                CaseEvent(
                    case_id=case,
                    event_key=f"{next(self._keys):05d}-{action}",
                    stage=stage,
                    action=action,
                    actor="system",
                    at=after + timedelta(hours=3 * n),
                    data=data,
                )
            )
        await self.r.session.flush()

    async def follow_up(self) -> None:
        """A follow-up (追评) of a rated record's item rating, a few days on."""
        index = self.rng.randrange(len(self.rated))
        record, done = self.rated[index]
        at = random_moment(self.rng, self.first, self.days) + timedelta(days=3)
        level = self.rng.choice(list(RatingLevel))
        follow = await self.r.rating(record, level, at, follow_up=done + 1, adopted=self.rng.random() < 0.9)
        self.follow_ups.append(follow)
        self.rated[index] = (record, done + 1)

    async def change(self, times: int) -> None:
        """What happens to the figures later: appeals decided, cases reassigned, worked and overdue, new ratings,
        a transaction corrected (another unit, another completion time), a follow-up withdrawn."""
        rng, session = self.rng, self.r.session
        for _ in range(times):
            what = rng.randrange(8)
            if what == 6:
                record = await session.get(ServiceRecord, rng.choice(self.rated)[0])
                assert record is not None
                record.unit_id = rng.choice(self.units)
                record.completed_at += timedelta(hours=rng.choice([-30, -5, 5, 30]))
                session.add(record)
            elif what == 7 and self.follow_ups:
                follow = await session.get(Rating, self.follow_ups.pop(rng.randrange(len(self.follow_ups))))
                await session.delete(follow)
            elif what == 0:
                rating = await session.get(Rating, rng.choice([*self.ratings, *self.follow_ups]))
                assert rating is not None
                rating.adopted = not rating.adopted
                session.add(rating)
            elif what in (1, 2) and self.cases:
                case = await session.get(Case, rng.choice(self.cases))
                assert case is not None
                if what == 1:
                    case.unit_id = rng.choice(self.units)
                else:
                    case.stage, case.outcome = rng.choice(_CASE_STATES)
                    case.overdue, case.escalation_rung = rng.random() < 0.5, rng.randint(0, 4)
                session.add(case)
            elif what == 3 and self.cases:
                await self.events(rng.choice(self.cases), random_moment(rng, self.first, self.days))
            elif what == 4:
                await self.follow_up()
            else:
                await self.transaction()
            await session.flush()
