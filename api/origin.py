"""Whether a browser's form post comes from this site (a CSRF defence beside the token)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from config import Settings


def same_origin(request: Request, settings: Settings) -> bool:
    """A browser's Origin (when it sends one) must be this site's."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or one that sends none: the CSRF token still has to match
        return True
    allowed = {_origin_of(settings.public_base_url), _origin_of(str(request.base_url))}
    return origin.rstrip("/") in allowed


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
