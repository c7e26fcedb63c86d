"""SMS through a gateway adapter. The development gateway writes each message to data/sms/ instead.

A gateway takes a dedup key with each message (real gateways call it the client's message id) and
sends a message once per key, so a retry after a crash does not text the rater twice.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from activities.mailer import PermanentSendError

# Mainland mobile numbers (a landline cannot take a text); numbers with another country code are passed on.
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class SmsGateway(Protocol):
    async def send(self, phone: str, text: str, dedup_key: str) -> None:
        """Send one text message once per dedup key; PermanentSendError if the number cannot take it."""
        ...


def check_mobile(phone: str) -> None:
    """Refuse numbers that cannot receive a text message, without naming the number."""
    digits = re.sub(r"[\s-]", "", phone)
    if digits.startswith("+") and not digits.startswith("+86"):
        return
    digits = digits.removeprefix("+86")
    if not _MAINLAND_MOBILE.match(digits):
        raise PermanentSendError("not a mobile number (短信无法送达固定电话或无效号码)")


class FileSmsSink:
    """Development gateway: one file per dedup key in the folder; a key already written is not written again."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def path_of(self, dedup_key: str) -> Path:
        """The file a message with this key is written to."""
        return self._folder / (re.sub(r"[^A-Za-z0-9.:_-]", "_", dedup_key) + ".txt")

    async def send(self, phone: str, text: str, dedup_key: str) -> None:
        check_mobile(phone)
        self._folder.mkdir(parents=True, exist_ok=True)
        path = self.path_of(dedup_key)
        if path.exists():
            return
        partial = path.with_suffix(".part")
        partial.write_text(f"To: {phone}\n\n{text}\n", encoding="utf-8")
        os.replace(partial, path)
