"""Rater PII (评价人信息) encrypted at rest: name, phone and email columns hold Fernet tokens.

Keys come from settings (HCP_PII_KEYS, comma-separated, newest first). Every key decrypts; the
first encrypts. Rotating: put a new key first, restart, run `python -m runtime.manage rotate-pii-key`
to re-encrypt every row under it, then drop the old key (docs/operations.md).
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

_FERNET_PREFIX = "gAAAA"  # every Fernet token starts with the version byte 0x80, base64 "gAAAA"


class PiiCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one PII key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(_FERNET_PREFIX):
            return stored  # written before encryption existed; rotate-pii-key encrypts it
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken:
            raise ValueError("a rater PII value cannot be decrypted with any configured key (HCP_PII_KEYS)") from None


_cipher: PiiCipher | None = None


def configure_pii_keys(keys: list[str]) -> None:
    """Set the process's PII keys (the API, the worker and scripts call this at start)."""
    global _cipher
    _cipher = PiiCipher(keys)


def pii_cipher() -> PiiCipher:
    if _cipher is None:
        raise RuntimeError("PII keys are not configured: call configure_pii_keys(settings.pii_key_list()) at start")
    return _cipher


def new_pii_key() -> str:
    return Fernet.generate_key().decode()


class EncryptedText(TypeDecorator[str]):
    """A text column stored encrypted. Equality search on it is impossible by design."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else pii_cipher().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else pii_cipher().decrypt(value)
