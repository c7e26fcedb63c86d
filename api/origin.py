"""Whether a browser's form post comes from this site (a CSRF defence beside the token)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from config import Settings


def same_origin(request: Request, settings: Settings) -> bool:
    """A browser's Origin (when it sends one) must be this site's.

    Pages are served with `Referrer-Policy: no-referrer`, under which Chromium sends `Origin: null`
    even for a post from the page itself; then the browser's own `Sec-Fetch-Site` (which a page
    cannot forge) says whether the form was on this site.
    """
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False  # cross-site or same-site (another subdomain): never ours
    if origin is None:  # not a browser, or one that sends none: the CSRF token still has to match
        return True
    if origin == "null":
        return fetch_site == "same-origin"
    allowed = {_origin_of(settings.public_base_url), _origin_of(str(request.base_url))}
    return origin.rstrip("/") in allowed


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
