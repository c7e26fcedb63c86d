"""Which profile's thresholds a pattern is judged by.

A pattern inside one unit (a staff member's ratings, one rater's bad reviews of a unit, a unit's own
transaction on a wrong channel) is judged by that unit's region profile, like its deadlines. A
pattern that crosses units and regions (a phone, a client, a comment, a source system's timing) has
no one region: the deployment's default profile (`national`) sets its numbers.
"""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.organisation import Region
from models.policy_store import DEFAULT_POLICY, latest_policy, policy_for_unit
from models.suspicion.rules import SuspicionRules


async def default_rules(session: AsyncSession) -> SuspicionRules:
    pinned = await latest_policy(session, DEFAULT_POLICY)
    return pinned.profile.suspicion if pinned else SuspicionRules()


async def unit_rules(session: AsyncSession, unit_id: int) -> SuspicionRules:
    return (await policy_for_unit(session, unit_id)).profile.suspicion


async def rules_in_use(session: AsyncSession) -> list[SuspicionRules]:
    """The thresholds of every profile a region runs under, and the default's."""
    codes = {DEFAULT_POLICY, *(await session.exec(select(Region.policy_code).distinct())).all()}
    found = [await latest_policy(session, code) for code in sorted(codes)]
    return [pinned.profile.suspicion for pinned in found if pinned is not None] or [SuspicionRules()]
