"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import (
    admin,
    audit,
    auth,
    calendar,
    case_export,
    cases,
    concentrated,
    disclosures,
    indicator_lists,
    indicators,
    policies,
    rankings,
    rater_export,
    rater_pages,
    rater_privacy,
    rating_batch,
    rating_export,
    ratings,
    reports,
    service_records,
    upstream,
)
from api.devices.hub import DeviceHub
from api.devices.router import router as devices_router
from api.docs import install_docs
from api.handlers import install_exception_handlers
from api.health import install_health
from api.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    NulGuardMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
    UnexpectedErrorMiddleware,
)
from api.observability import FASTAPI_TELEMETRY, install_observability
from api.openapi import install_openapi
from api.rate_limit import PublicRateLimiter
from api.root_cause import router as root_cause_router
from api.root_cause_steps import router as root_cause_steps_router
from api.suspicious_ratings import router as suspicious_ratings_router
from config import Settings, get_settings
from models.codes import code_book
from models.db import Database
from models.pii import configure_pii_keys
from pages import install_pages
from runtime.temporal import TemporalConnection


def create_app(
    settings: Settings | None = None, db: Database | None = None, temporal: TemporalConnection | None = None
) -> FastAPI:
    """Build the app. Tests pass their own database and Temporal connection."""
    settings = settings or get_settings()
    configure_pii_keys(settings.pii_key_list())
    code_book()  # the source systems' code tables (policy/codes, policy/sources): a mistake there stops the start
    owns_db = db is None
    db = db or Database(settings.async_sqlalchemy_url)
    temporal = temporal or TemporalConnection(settings)
    devices = DeviceHub(settings, db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await devices.close()
        if owns_db:
            await db.dispose()

    app = FastAPI(
        title="政务服务好差评 · 差评整改系统 API",
        description="Rating intake, bad-review cases (差评工单) and the unit's handling steps.",
        version="0.1.0",
        lifespan=lifespan,
        # /docs is served from the swagger-ui-bundle package (api/docs.py), never from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        telemetry=FASTAPI_TELEMETRY,  # never its spans: they record raw paths (api/observability.py)
    )
    app.state.settings = settings
    app.state.db = db
    app.state.temporal = temporal
    app.state.devices = devices
    # Added innermost first: a request meets the request id first and the rate limiter last.
    app.add_middleware(PublicRateLimiter, per_minute=settings.public_rate_limit_per_minute)
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.request_body_max_bytes,
        larger={rating_batch.BATCH_PATH: rating_batch.BATCH_BODY_MAX_BYTES},
    )
    install_observability(app, settings, db)  # /metrics, request metrics and spans: inside the 500 handler
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    install_exception_handlers(app)
    install_openapi(app)
    install_docs(app)
    install_health(app)
    app.include_router(auth.router)
    app.include_router(service_records.router)
    # Before ratings: /api/v1/ratings/export would otherwise be taken for /api/v1/ratings/{rating_id}.
    app.include_router(rating_export.router)
    app.include_router(ratings.router)
    app.include_router(rating_batch.router)
    app.include_router(cases.router)
    app.include_router(case_export.router)
    app.include_router(indicators.router)
    app.include_router(indicator_lists.router)
    app.include_router(rankings.router)
    app.include_router(reports.router)
    app.include_router(disclosures.router)
    app.include_router(rater_privacy.router)
    app.include_router(rater_export.router)
    app.include_router(audit.router)
    app.include_router(suspicious_ratings_router)
    app.include_router(concentrated.router)
    app.include_router(root_cause_router)
    app.include_router(root_cause_steps_router)
    app.include_router(admin.router)
    app.include_router(policies.router)
    app.include_router(calendar.router)
    app.include_router(rater_pages.router)
    app.include_router(devices_router)
    app.include_router(upstream.router)
    install_pages(app)
    return app
