"""How a device logs in: a staff member's work number (工号) and a device key, with failed logins limited per client.

The device key is an API key of the hall's business system (models/users.py ApiKey): created by an
administrator, shown once, stored only as a SHA-256, revocable. No new secret kind and no password:
the key is compared by hash like the X-API-Key header. The staff member must belong to a unit whose
transactions that system registers (at least one service record of the unit from that source), so
one hall's key cannot put a device in another hall's name.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import api_client_of_key
from models.organisation import Staff, Unit
from models.services import ServiceRecord
from models.users import ApiKey

_MAX_TRACKED_CLIENTS = 100_000


@dataclass(frozen=True)
class DeviceIdentity:
    """Who a logged-in device speaks for: a staff member, for the system whose key it holds."""

    staff_id: int
    staff_no: str
    staff_name: str
    unit_id: int
    unit_name: str
    key_id: int
    source_system: str


async def authenticate(session: AsyncSession, staff_no: str, key: str) -> DeviceIdentity | str:
    """The device's identity, or why it is refused (for the log only: the device gets one answer for all)."""
    api_key = await api_client_of_key(key, session)
    staff = (await session.exec(select(Staff).where(Staff.staff_no == staff_no))).first()
    if api_key is None:
        return "key"
    if staff is None:
        return "staff"
    covered = (
        await session.exec(
            select(ServiceRecord.id)
            .where(ServiceRecord.unit_id == staff.unit_id, ServiceRecord.source_system == api_key.source_system)
            .limit(1)
        )
    ).first()
    if covered is None:
        return "unit"
    unit = await session.get(Unit, staff.unit_id)
    assert unit is not None and staff.id is not None and api_key.id is not None  # a foreign key; rows read back
    return DeviceIdentity(
        staff_id=staff.id,
        staff_no=staff.staff_no,
        staff_name=staff.name,
        unit_id=staff.unit_id,
        unit_name=unit.name,
        key_id=api_key.id,
        source_system=api_key.source_system,
    )


async def key_still_valid(session: AsyncSession, key_id: int) -> bool:
    """Whether the key a device logged in with is still unrevoked (a revoked key ends its devices' sessions)."""
    row = await session.get(ApiKey, key_id)
    return row is not None and row.revoked_at is None


class LoginFailures:
    """Failed device logins per client address within a window; at the limit the address must wait.

    A try is counted before it is checked (and forgiven when it succeeds), so parallel tries from one
    address count each other. Refused tries are not counted: knocking during a wait does not prolong it.
    In this process's memory, like the public routes' limiter (api/rate_limit.py).
    """

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._tries: dict[str, deque[float]] = {}

    def begin(self, client: str, now: float | None = None) -> float | None:
        """Count a try and return None, or return how many seconds the client must wait (nothing counted)."""
        now = time.monotonic() if now is None else now
        tries = self._tries.get(client)
        if tries is None:
            if len(self._tries) >= _MAX_TRACKED_CLIENTS:
                self._tries.clear()  # bounded memory under a flood of distinct addresses
            tries = self._tries[client] = deque()
        while tries and tries[0] <= now - self.window_seconds:
            tries.popleft()
        if len(tries) >= self.limit:
            return tries[0] + self.window_seconds - now
        tries.append(now)
        return None

    def forgive(self, client: str, begun_at: float) -> None:
        """A try that succeeded is not a failure."""
        tries = self._tries.get(client)
        if tries is not None and begun_at in tries:
            tries.remove(begun_at)

    def begin_at(self, client: str) -> tuple[float, float | None]:
        """`begin` with the clock read once: (the try's time, the wait or None)."""
        now = time.monotonic()
        return now, self.begin(client, now)
