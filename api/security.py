"""Login tokens (JWT) bound to the user's credential state. Password and API-key hashing: models/credentials.py."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

_ALGORITHM = "HS256"


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
