"""The pages people use (server-rendered, zh-CN): staff, supervisors, reviewers, administrators, raters.

Pages call the same functions the API routes call, so who may see and do what is decided once
(api/cases/scope.py, api/deps.py); a page only draws the answer and turns errors into Chinese.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pages import (
    admin,
    auth_pages,
    cases,
    concentrated,
    dashboard,
    dashboard_list,
    dashboard_screen,
    ledger,
    reports,
    reviews,
    root_cause,
    supervision,
    suspicious,
)
from pages.citizen import public

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_pages(app: FastAPI) -> None:
    """Mount the static assets and every page router."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(auth_pages.router)
    app.include_router(cases.router)
    app.include_router(supervision.router)
    app.include_router(ledger.router)
    app.include_router(reviews.router)
    app.include_router(suspicious.router)
    app.include_router(concentrated.router)
    app.include_router(root_cause.router)
    app.include_router(reports.router)
    app.include_router(public.router)
    app.include_router(dashboard.router)
    app.include_router(dashboard_list.router)
    app.include_router(dashboard_screen.router)
    app.include_router(admin.router)
