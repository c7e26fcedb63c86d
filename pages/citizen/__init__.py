"""The rater's pages (评价人页面), public and mobile first: rate a transaction, check a window's code, follow a case.

- /q/{token}: rate one transaction (一人一事一码), rate.py
- /w/{code}, /w/{code}/print, /qr/window/{code}.svg|png: a window's static code (一窗一码), windows.py
- /r/{token}: a case's progress, result and the rater's answer, answer.py and status.py

docs/citizen-pages.md describes them.
"""

from __future__ import annotations

from fastapi import APIRouter

from pages.citizen import answer, rate, windows

router = APIRouter()
router.include_router(rate.router)
router.include_router(windows.router)
router.include_router(answer.router)
