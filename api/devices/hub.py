"""The devices connected to this API process, one per staff member, and where each notice goes.

Each logged-in device has a mailbox here; its connection (connection.py) reads from it. One staff
member has one device: a login replaces the older connection at once in this process, and a
`LoggedIn` notice replaces it in every other process. Notices reach every process in the same order
(commit order), so "newer" is decided by that order: a process replaces its device only once it has
seen that device's own login notice and then another one for the same staff member. A device
receives pushes only after its own login notice came back; a push committed before that is found by
the pending-pages query the connection runs right after its login notice committed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from api.devices.bus import Bus, LocalBus, LoggedIn, Notice, PostgresBus, Push, psycopg_conninfo
from api.devices.login import DeviceIdentity, LoginFailures
from api.devices.pages import invite_at_counter
from config import Settings
from models.db import Database
from models.services import ServiceRecord

log = logging.getLogger("hcp.devices")

# How long a login waits for this process to be listening for notices before answering "unavailable".
_LISTEN_READY_SECONDS = 5.0


class Signal(Enum):
    REPLACED = "replaced"  # a newer login of the same staff member: say so and close
    RESYNC = "resync"  # notices may have been missed: look for pending pages again


@dataclass(eq=False)
class Mailbox:
    """What the hub hands one connected device: invitation ids to open, or a signal."""

    identity: DeviceIdentity
    connection_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    announced: bool = False  # its own login notice came back: it is the staff member's current device
    queue: asyncio.Queue[int | Signal] = field(default_factory=asyncio.Queue)


class DeviceHub:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._boxes: dict[int, Mailbox] = {}
        self.bus: Bus
        if db.engine.dialect.name == "postgresql":
            self.bus = PostgresBus(psycopg_conninfo(db.engine.url), self.receive, self.resync, _LISTEN_READY_SECONDS)
        else:
            self.bus = LocalBus(self.receive)
        self.login_failures = LoginFailures(settings.login_max_failures, settings.login_lock_minutes * 60)

    # --- the transaction that registers a window transaction ---------------------------------------

    async def stage_counter_page(self, session: AsyncSession, record: ServiceRecord, source_system: str) -> Push | None:
        """Issue the counter device's rating invitation and its push inside the caller's transaction."""
        push = await invite_at_counter(session, record, source_system)
        if push is not None:
            await self.bus.send(session, push)
        return push

    async def published(self, notice: Notice | None) -> None:
        """After the caller's commit: deliver what it sent (in-process), or nothing (the database does)."""
        if notice is not None:
            await self.bus.committed(notice)

    # --- devices of this process ---------------------------------------------------------------------

    async def attach(self, identity: DeviceIdentity) -> Mailbox:
        """A device logged in: replace this staff member's older one here and, by a notice, everywhere."""
        await self.bus.start()  # listening before the login is announced, so no later notice is missed
        box = Mailbox(identity)
        older = self._boxes.get(identity.staff_id)
        self._boxes[identity.staff_id] = box
        notice = LoggedIn(staff_id=identity.staff_id, connection_id=box.connection_id)
        try:
            async with self.db.session() as session:
                await self.bus.send(session, notice)
                await session.commit()
        except BaseException:
            # Not announced: this login did not happen, and the older device stays the staff member's.
            self.detach(box)
            if older is not None:
                self._boxes.setdefault(identity.staff_id, older)
            raise
        if older is not None:
            older.queue.put_nowait(Signal.REPLACED)
        await self.bus.committed(notice)
        return box

    def detach(self, box: Mailbox) -> None:
        if self._boxes.get(box.identity.staff_id) is box:
            del self._boxes[box.identity.staff_id]

    def connected(self) -> int:
        return len(self._boxes)

    def receive(self, notice: Notice) -> None:
        """A notice from the bus. Never raises: the listener must go on."""
        try:
            self._route(notice)
        except Exception as exc:  # noqa: BLE001 - one bad notice must not stop the others
            log.error("device notice not routed: %s", type(exc).__name__)

    def _route(self, notice: Notice) -> None:
        box = self._boxes.get(notice.staff_id)
        if box is None:
            return
        if isinstance(notice, Push):
            if box.announced and box.identity.source_system == notice.source_system:
                box.queue.put_nowait(notice.invitation_id)
        elif notice.connection_id == box.connection_id:
            box.announced = True
        elif box.announced:
            # Another login of this staff member, after this device's own: that one is current now.
            del self._boxes[notice.staff_id]
            box.queue.put_nowait(Signal.REPLACED)
        # Otherwise that login came before this device's own, which is the newer one: nothing to do.

    def resync(self) -> None:
        """Notices may have been missed (the listening connection was lost): devices look for pending pages again."""
        for box in self._boxes.values():
            if box.announced:
                box.queue.put_nowait(Signal.RESYNC)

    async def close(self) -> None:
        await self.bus.close()


async def get_devices(request: Request) -> DeviceHub:
    return request.app.state.devices


DevicesDep = Annotated[DeviceHub, Depends(get_devices)]
