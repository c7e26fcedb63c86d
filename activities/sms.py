"""SMS through a gateway adapter. The development sink writes each message to data/sms/ instead."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol


class SmsGateway(Protocol):
    async def send(self, phone: str, text: str, dedup_key: str) -> None:
        """Send one text message."""
        ...


class FileSmsSink:
    """Development gateway: one file per message, named by time and dedup key."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._counter = itertools.count(1)

    async def send(self, phone: str, text: str, dedup_key: str) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self._folder / f"{stamp}-{next(self._counter):04d}-{dedup_key}.txt"
        path.write_text(f"To: {phone}\n\n{text}\n", encoding="utf-8")
