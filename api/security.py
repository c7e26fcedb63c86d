"""Password hashing (argon2), login tokens (JWT) and business-system API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_ALGORITHM = "HS256"
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


def credential_fingerprint(user_id: int, password_hash: str, signing_key: str) -> str:
    """A short, keyed digest of the user's credential state, carried in every token.

    A password change alters the hash (argon2 salts afresh), so every token issued before it stops
    matching at once, with no token list to keep. The HMAC keeps the hash itself out of the token.
    """
    digest = hmac.new(signing_key.encode(), f"credential:{user_id}:{password_hash}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def create_access_token(user_id: int, signing_key: str, minutes: int, *, password_hash: str) -> tuple[str, datetime]:
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    claims = {
        "sub": str(user_id),
        "exp": expires,
        "typ": "access",
        "cred": credential_fingerprint(user_id, password_hash, signing_key),
    }
    return jwt.encode(claims, signing_key, algorithm=_ALGORITHM), expires


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    credential: str


def decode_access_claims(token: str, signing_key: str) -> AccessClaims | None:
    """The claims of a valid, unexpired access token, else None."""
    try:
        claims = jwt.decode(token, signing_key, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        return None
    credential = claims.get("cred")
    if claims.get("typ") != "access" or not isinstance(credential, str):
        return None
    try:
        return AccessClaims(user_id=int(claims["sub"]), credential=credential)
    except (TypeError, ValueError):
        return None


def decode_access_token(token: str, signing_key: str) -> int | None:
    """The user id in a valid, unexpired token, else None (the credential is not checked here)."""
    claims = decode_access_claims(token, signing_key)
    return claims.user_id if claims else None


def credential_matches(claims: AccessClaims, password_hash: str, signing_key: str) -> bool:
    expected = credential_fingerprint(claims.user_id, password_hash, signing_key)
    return hmac.compare_digest(claims.credential, expected)


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
