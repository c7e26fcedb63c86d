"""One device's conversation: login, heartbeats, and the rating pages its mailbox receives.

One task per connection does everything, waiting on whichever comes first: a message from the
device, something in its mailbox, or the silence limit. Every send is from this task, so messages
never interleave. A device silent for 2.5 heartbeat intervals (also before it logs in) is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any, NoReturn

from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.devices import protocol
from api.devices.hub import DeviceHub, Mailbox, Signal
from api.devices.login import authenticate, key_still_valid
from api.devices.pages import open_rating, pending_invitations
from api.devices.protocol import SILENCE_INTERVALS, CloseCode, ErrorCode, Heartbeat, Login
from models.db import utcnow

log = logging.getLogger("hcp.devices")


class _Ended(Exception):
    """The conversation is over (closed by either side)."""


class DeviceConversation:
    def __init__(self, websocket: WebSocket, hub: DeviceHub) -> None:
        self.ws = websocket
        self.hub = hub
        self.settings = hub.settings
        self.client = websocket.client.host if websocket.client else "unknown"
        self.silence = self.settings.device_heartbeat_seconds * SILENCE_INTERVALS
        self.box: Mailbox | None = None
        self.sent: set[int] = set()  # invitations opened on this connection: never twice

    async def run(self) -> None:
        await self.ws.accept()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.silence
        receiving: asyncio.Future[Any] = asyncio.ensure_future(self.ws.receive())
        taking: asyncio.Future[int | Signal] | None = None
        try:
            while True:
                waits: set[asyncio.Future[Any]] = {receiving}
                if self.box is not None:
                    taking = asyncio.ensure_future(self.box.queue.get())
                    waits.add(taking)
                done, _ = await asyncio.wait(
                    waits, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
                )
                if taking is not None:
                    if taking in done:
                        await self._deliver(taking.result())
                    else:
                        taking.cancel()  # an unfinished get takes nothing from the queue
                    taking = None
                if receiving in done:
                    message = receiving.result()
                    if message["type"] == "websocket.disconnect":
                        return
                    deadline = loop.time() + self.silence
                    await self._handle(message)
                    receiving = asyncio.ensure_future(self.ws.receive())
                elif not done:
                    log.info("device dropped: silent for %.0f s", self.silence)
                    await self._end(protocol.error(ErrorCode.HEARTBEAT_TIMEOUT), CloseCode.SILENT)
        except _Ended:
            return
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("device connection ended: database unavailable (%s)", type(exc).__name__)
            with contextlib.suppress(_Ended):
                await self._end(protocol.error(ErrorCode.UNAVAILABLE), CloseCode.UNAVAILABLE)
        finally:
            receiving.cancel()
            if taking is not None:
                taking.cancel()
            if self.box is not None:
                self.hub.detach(self.box)

    # --- from the device ---------------------------------------------------------------------------

    async def _handle(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is None:
            await self._send(protocol.error(ErrorCode.BAD_MESSAGE))  # a binary frame: not this protocol
            return
        if len(text) > protocol.MAX_MESSAGE_CHARS:
            await self._end(protocol.error(ErrorCode.MESSAGE_TOO_LARGE), CloseCode.TOO_LARGE)
        command = protocol.parse_command(text)
        if isinstance(command, ErrorCode):
            await self._send(protocol.error(command))
        elif isinstance(command, Login):
            if self.box is not None:
                await self._send(protocol.error(ErrorCode.ALREADY_LOGGED_IN))
            else:
                await self._login(command)
        elif isinstance(command, Heartbeat):
            await self._heartbeat()

    async def _login(self, command: Login) -> None:
        failures = self.hub.login_failures
        begun_at, wait = failures.begin_at(self.client)
        if wait is not None:
            log.info("device login refused: too many failures from this client")
            minutes = max(1, math.ceil(wait / 60))
            refusal = {
                "type": "login_failed",
                "code": protocol.TOO_MANY_FAILURES,
                "message": protocol.TOO_MANY_FAILURES_MESSAGE.format(minutes=minutes),
                "retry_after": math.ceil(wait),
            }
            await self._end(refusal, CloseCode.TOO_MANY_FAILURES)
        try:
            async with self.hub.db.session() as session:
                found = await authenticate(session, command.staff_no, command.key)
        except (SQLAlchemyError, OSError):
            failures.forgive(self.client, begun_at)  # the database failed, not the device
            raise
        if isinstance(found, str):
            log.info("device login refused (%s)", found)  # never the work number or key as sent
            refusal = {"type": "login_failed", "code": protocol.LOGIN_FAILED, "message": protocol.LOGIN_FAILED_MESSAGE}
            await self._end(refusal, CloseCode.LOGIN_FAILED)
        failures.forgive(self.client, begun_at)
        try:
            self.box = await self.hub.attach(found)
        except TimeoutError:
            log.warning("device login not completed: not listening for notices yet")
            await self._end(protocol.error(ErrorCode.UNAVAILABLE), CloseCode.UNAVAILABLE)
        log.info("device logged in: staff %s of unit %s", found.staff_id, found.unit_id)
        await self._send(
            {
                "type": "login_ok",
                "staff_no": found.staff_no,
                "staff_name": found.staff_name,
                "unit_name": found.unit_name,
                "heartbeat_seconds": _number(self.settings.device_heartbeat_seconds),
                "server_time": protocol.china_time(utcnow()),
            }
        )
        await self._queue_pending()

    async def _heartbeat(self) -> None:
        if self.box is None:
            await self._send(protocol.error(ErrorCode.NOT_LOGGED_IN))
            return
        await self._check_key()
        await self._send({"type": "heartbeat_ack", "server_time": protocol.china_time(utcnow())})

    # --- from the mailbox ----------------------------------------------------------------------------

    async def _deliver(self, item: int | Signal) -> None:
        assert self.box is not None
        if item is Signal.REPLACED:
            log.info("device replaced: staff %s logged in on another device", self.box.identity.staff_id)
            await self._end({"type": "replaced", "message": protocol.REPLACED_MESSAGE}, CloseCode.REPLACED)
        elif item is Signal.RESYNC:
            await self._queue_pending()
        elif isinstance(item, int) and item not in self.sent:
            await self._check_key()
            async with self.hub.db.session() as session:
                message = await open_rating(session, self.settings, item, self.box.identity)
            if message is not None:
                self.sent.add(item)
                await self._send(message)

    async def _queue_pending(self) -> None:
        """The pages this staff member's transactions still wait for (after an absence, or missed notices)."""
        assert self.box is not None
        async with self.hub.db.session() as session:
            pending = await pending_invitations(session, self.box.identity)
        for invitation_id in pending:
            self.box.queue.put_nowait(invitation_id)

    async def _check_key(self) -> None:
        """A revoked key ends its devices' sessions at their next heartbeat or page."""
        assert self.box is not None
        async with self.hub.db.session() as session:
            valid = await key_still_valid(session, self.box.identity.key_id)
        if not valid:
            log.info("device disconnected: its key was revoked (staff %s)", self.box.identity.staff_id)
            await self._end(protocol.error(ErrorCode.KEY_REVOKED), CloseCode.KEY_REVOKED)

    # --- to the device -------------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self.ws.send_text(protocol.encode(message))
        except (WebSocketDisconnect, RuntimeError, OSError):
            raise _Ended() from None  # the device went away meanwhile

    async def _end(self, message: dict[str, Any], code: CloseCode) -> NoReturn:
        """Say why, close, and end the conversation (raises _Ended)."""
        with contextlib.suppress(_Ended):
            await self._send(message)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.ws.close(code=code)
        raise _Ended()


def _number(seconds: float) -> int | float:
    """60, not 60.0: device firmware often parses an integer."""
    return int(seconds) if seconds.is_integer() else seconds
