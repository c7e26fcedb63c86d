"""Keyed hashes the detectors compare instead of the values: a rater's phone, the submitting client, a comment.

The rater columns are encrypted with a fresh nonce each time, so equal phones never look equal in
the database; detectors need equality and nothing more. An HMAC under a key derived from the signing
key gives exactly that, and a copy of the database alone cannot test guessed phone numbers against
it (11 digits are few enough to try them all against a plain hash). Changing HCP_SECRET_KEY starts
every pattern afresh: ratings before the change no longer match ratings after it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from typing import Any

_PHONE_DIGITS = 11  # a mainland mobile number; a leading 86 / +86 country code is dropped


def _digest(signing_key: str, purpose: str, value: str) -> str:
    key = hmac.new(signing_key.encode(), f"hcp/suspicion/{purpose}/v1".encode(), hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def phone_key(signing_key: str, phone: str | None) -> str | None:
    """The same key for +86 138-0000-1234 and 13800001234."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if len(digits) > _PHONE_DIGITS and digits.startswith("86"):
        digits = digits[2:]
    return _digest(signing_key, "phone", digits) if digits else None


def client_key(signing_key: str, client: str | None) -> str | None:
    """The submitting client as the intake's caller names it (the rater's pages: address and browser)."""
    return _digest(signing_key, "client", client) if client else None


def comment_letters(comment: str) -> str:
    """A comment without spaces, punctuation or case: what a copy keeps when it is re-typed or re-spaced."""
    normalized = unicodedata.normalize("NFKC", comment).casefold()
    return "".join(ch for ch in normalized if ch.isalnum())


def content_key(signing_key: str, comment: str, answers: dict[str, Any]) -> tuple[str | None, int]:
    """(key of comment and answers, letters in the comment); no key without a comment.

    Answers alone are no signal: most satisfied raters give every question the top score, so equal
    answers are normal; an equal comment of some length, with equal answers, is not.
    """
    letters = comment_letters(comment)
    if not letters:
        return None, 0
    scored = "&".join(f"{key}={answers[key]}" for key in sorted(answers))
    return _digest(signing_key, "content", f"{letters}\x00{scored}"), len(letters)


def rater_client(address: str, user_agent: str) -> str:
    """How the rater's pages name the submitting client: its address and browser (hashed before it is kept)."""
    return f"{address}\x00{user_agent[:200]}"
