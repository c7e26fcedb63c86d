"""QR codes (二维码) of the rater's entry points, as SVG for print and PNG for screens and messages."""

from __future__ import annotations

import io

import segno

from config import Settings

SVG_TYPE = "image/svg+xml"
PNG_TYPE = "image/png"


def _code(url: str) -> segno.QRCode:
    # Level M survives a smudged or creased print; the URLs here are short enough to stay a small code.
    return segno.make(url, error="m", micro=False)


def qr_svg(url: str, title: str = "") -> bytes:
    """An SVG QR code of url, scalable for print (one module is one unit of the viewBox)."""
    out = io.BytesIO()
    _code(url).save(out, kind="svg", scale=1, border=4, light="#fff", xmldecl=True, title=title or None, omitsize=True)
    return out.getvalue()


def qr_png(url: str) -> bytes:
    """A PNG QR code of url, large enough for a phone to read off a screen or paper."""
    out = io.BytesIO()
    _code(url).save(out, kind="png", scale=10, border=4)
    return out.getvalue()


def rating_url(settings: Settings, token: str) -> str:
    """The rating page of an invitation (一人一事一码), as the rater opens it."""
    return f"{settings.public_base_url.rstrip('/')}/q/{token}"


def window_url(settings: Settings, code: str) -> str:
    """The page a window's printed code (一窗一码) opens."""
    return f"{settings.public_base_url.rstrip('/')}/w/{code}"
