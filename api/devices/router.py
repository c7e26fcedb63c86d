"""The route window rating devices connect to: `/ws/devices` (docs/devices.md).

Open on purpose, like the login form: the device authenticates in-band with its first message
(`login`, a work number and the hall system's key), so no cookie or header is involved and a page
on another site gains nothing by opening it.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from api.devices.connection import DeviceConversation

DEVICES_PATH = "/ws/devices"

router = APIRouter(tags=["devices"])


@router.websocket(DEVICES_PATH)
async def device_socket(websocket: WebSocket) -> None:
    """A window rating device (评价器): login, heartbeats, and the rating pages pushed to it."""
    await DeviceConversation(websocket, websocket.app.state.devices).run()
