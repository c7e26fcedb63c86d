"""App-level exception handlers: every failure a route can meet becomes an ErrorBody answer.

- The database unreachable (PostgreSQL down or restarting, the pool out of connections, SQLite
  locked) is a 503 with ``Retry-After``: the request did nothing and may be retried as it is.
- A value the database cannot hold (an integer past its range) is a 422, not a 500.
- Starlette's own HTTP errors (404 for an unknown path, 405, 400 for an unparsable form) get the
  same ``{"detail": {"code", "message"}}`` shape as the routes' errors.
- Validation errors name each field and never echo the submitted value (it may be a phone number).

Anything else reaches ``UnexpectedErrorMiddleware`` (api/middleware.py) and becomes a JSON 500.
"""

from __future__ import annotations

import errno
import logging
import socket
import sqlite3

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import error_content
from api.middleware import request_id_of, route_template

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_CONNECTION_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}
# SQLite reports a busy or missing file as OperationalError, and so it reports a broken query:
# only these mean "try again later".
_SQLITE_TRANSIENT = ("database is locked", "database is busy", "unable to open database file", "disk i/o error")
_HTTP_CODES = {
    400: ("bad_request", "请求格式有误"),
    401: ("not_authenticated", "请先登录"),
    403: ("forbidden", "无权执行此操作"),
    404: ("not_found", "请求的地址不存在"),
    405: ("method_not_allowed", "此地址不支持该请求方法"),
    413: ("body_too_large", "请求内容过大"),
    415: ("unsupported_media_type", "不支持的请求内容类型"),
}


def database_unavailable(exc: BaseException) -> bool:
    """True when exc means the database could not be reached or used right now, not that the query was wrong."""
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no connection to give
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return database_unavailable(exc.orig) if exc.orig is not None else isinstance(exc, sa_exc.OperationalError)
    if isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc).lower() for text in _SQLITE_TRANSIENT)
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    return isinstance(exc, OSError) and exc.errno in _CONNECTION_ERRNOS


def _value_out_of_range(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        return _value_out_of_range(exc.orig)
    if isinstance(exc, psycopg.errors.NumericValueOutOfRange):
        return True
    # sqlite3 and psycopg refuse an int that does not fit 64 bits before sending it.
    return isinstance(exc, OverflowError) or (isinstance(exc, psycopg.DataError) and "too large" in str(exc))


def _unavailable_response(request: Request, exc: BaseException) -> JSONResponse:
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    # The driver's message only: SQLAlchemy's own text would add the statement's parameters.
    log.warning(
        "database unavailable on %s %s: %s: %s request_id=%s",
        request.method,
        route_template(request.scope),
        type(cause).__name__,
        str(cause).splitlines()[0] if str(cause) else "",
        request_id_of(request.scope),
    )
    return JSONResponse(
        status_code=503,
        content=error_content("database_unavailable", "数据库暂时不可用，请稍后重试；本次请求未做任何更改"),
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        return _unavailable_response(request, exc)
    if _value_out_of_range(exc):
        return JSONResponse(status_code=422, content=error_content("value_out_of_range", "数值超出允许范围"))
    raise exc  # a real bug: UnexpectedErrorMiddleware answers 500 and logs it with the request id


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        loc = list(err["loc"])
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        errors.append({"field": ".".join(str(p) for p in loc), "message": err["msg"], "type": err["type"]})
    first = next((e["field"] for e in errors if e["field"]), None)
    return JSONResponse(
        status_code=422, content=error_content("invalid_request", "请求内容有误", field=first, errors=errors)
    )


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if isinstance(exc.detail, dict) and "code" in exc.detail:
        content = {"detail": exc.detail}
    else:
        code, message = _HTTP_CODES.get(exc.status_code, ("http_error", "请求未能完成"))
        content = error_content(code, message)
    return JSONResponse(status_code=exc.status_code, content=content, headers=exc.headers)


def install_exception_handlers(app: FastAPI) -> None:
    # Starlette types a handler as taking any Exception; these take the one class they are registered for.
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    for exc_class in (
        sa_exc.DBAPIError,  # OperationalError, InterfaceError, DataError... sorted out in the handler
        sa_exc.TimeoutError,
        psycopg.Error,
        sqlite3.Error,
        OSError,  # ConnectionRefusedError and friends from the pool's connect
        OverflowError,
    ):
        app.add_exception_handler(exc_class, _database_error)
