"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api import admin, audit, auth, calendar, cases, policies, rater_pages, rater_privacy, ratings, service_records
from api.rate_limit import PublicRateLimiter
from config import Settings, get_settings
from models.db import Database
from models.pii import configure_pii_keys
from runtime.temporal import TemporalConnection


def create_app(
    settings: Settings | None = None, db: Database | None = None, temporal: TemporalConnection | None = None
) -> FastAPI:
    """Build the app. Tests pass their own database and Temporal connection."""
    settings = settings or get_settings()
    configure_pii_keys(settings.pii_key_list())
    owns_db = db is None
    db = db or Database(settings.async_sqlalchemy_url)
    temporal = temporal or TemporalConnection(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_db:
            await db.dispose()

    app = FastAPI(
        title="政务服务好差评 · 差评整改系统 API",
        description="Rating intake, bad-review cases (差评工单) and the unit's handling steps.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.temporal = temporal
    app.middleware("http")(PublicRateLimiter(settings.public_rate_limit_per_minute))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name each bad field plainly, and never echo the submitted value (it may be a phone number).
        errors = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"], "type": err["type"]}
            for err in exc.errors()
        ]
        return JSONResponse(
            status_code=422,
            content={"detail": {"code": "invalid_request", "message": "请求内容有误", "errors": errors}},
        )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness probe; deliberately open and says nothing about data."""
        return {"status": "ok"}

    app.include_router(auth.router)
    app.include_router(service_records.router)
    app.include_router(ratings.router)
    app.include_router(cases.router)
    app.include_router(rater_privacy.router)
    app.include_router(audit.router)
    app.include_router(admin.router)
    app.include_router(policies.router)
    app.include_router(calendar.router)
    app.include_router(rater_pages.router)
    return app
