"""Credentials stored for people and systems: password hashes (argon2) and business-system API keys.

Below the API on purpose: the management commands and the demo seed create accounts and keys too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
API_KEY_PREFIX = "hcp"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the user does not exist, so a wrong username costs as
# much time as a wrong password and the response time does not reveal which usernames exist.
DUMMY_PASSWORD_HASH = hash_password(secrets.token_urlsafe(16))


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (full key to hand out once, prefix to store, hash to store)."""
    prefix = secrets.token_hex(4)
    full = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return full, prefix, hash_api_key(full)


def hash_api_key(full_key: str) -> str:
    # API keys are long random strings, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(full_key.encode()).hexdigest()


def api_key_prefix(full_key: str) -> str | None:
    parts = full_key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    return parts[1]


def api_key_matches(full_key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(full_key), stored_hash)
