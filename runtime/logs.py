"""Log lines as text or as one JSON object per line (``HCP_LOG_FORMAT``), for the API and the worker.

A JSON line has a fixed set of fields: ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``,
``message``, then, when known, ``request_id``, ``route`` (the template, never the raw path: rater
tokens are in paths), ``case_id``, ``method``, ``status``, ``duration_ms``, ``workflow_id``,
``activity``, ``trace_id`` (while tracing is on) and ``exception`` (the traceback). Nothing else from
a record is copied, so an ``extra`` cannot carry a rater's contact into the log unless it is one of these.

The request's fields come from the request being served (``request_scope_var``, set by the request
id middleware), so every line logged while answering it carries them without each call passing them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace
from temporalio import activity

# The ASGI scope of the request being served: the router fills in the route and its path parameters.
request_scope_var: contextvars.ContextVar[MutableMapping[str, Any] | None] = contextvars.ContextVar(
    "request_scope", default=None
)

# Fields a record may carry as `extra` that a JSON line copies, with the type each must have.
_EXTRA_FIELDS: dict[str, type | tuple[type, ...]] = {
    "request_id": str,
    "case_id": int,
    "route": str,
    "method": str,
    "status": int,
    "duration_ms": (int, float),
    "workflow_id": str,
}
# Where api/middleware.py's RequestIdMiddleware keeps the request's id in the scope.
REQUEST_ID_SCOPE_KEY = "hcp.request_id"
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error")


def _route_of(scope: MutableMapping[str, Any]) -> str | None:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def _case_id_of(scope: MutableMapping[str, Any]) -> int | None:
    """A case route's ``{case_id}`` (``/api/v1/cases/{case_id}/...``), once the router has matched it."""
    value = (scope.get("path_params") or {}).get("case_id")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message or traceback are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), ensure_ascii=False, default=str)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The line's fields, in a stable order."""
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        scope = request_scope_var.get()
        if scope is not None:
            if isinstance(request_id := scope.get(REQUEST_ID_SCOPE_KEY), str):
                line["request_id"] = request_id
            if (route := _route_of(scope)) is not None:
                line["route"] = route
            if (case_id := _case_id_of(scope)) is not None:
                line["case_id"] = case_id
        for name, kind in _EXTRA_FIELDS.items():
            value = record.__dict__.get(name)
            if isinstance(value, kind) and not isinstance(value, bool):
                line[name] = value
        self._temporal_fields(record, line)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # only while tracing is on (runtime/tracing.py): the log line's place in its trace
            line["trace_id"] = format(span.trace_id, "032x")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["exception"] = self.formatStack(record.stack_info)
        return line

    @staticmethod
    def _temporal_fields(record: logging.LogRecord, line: dict[str, Any]) -> None:
        """The workflow and activity a worker's line was logged from (ids and type names only)."""
        details = record.__dict__.get("temporal_activity") or record.__dict__.get("temporal_workflow")
        if isinstance(details, dict):
            if isinstance(details.get("workflow_id"), str):
                line.setdefault("workflow_id", details["workflow_id"])
            if isinstance(details.get("activity_type"), str):
                line["activity"] = details["activity_type"]
            return
        if activity.in_activity():
            info = activity.info()
            if info.workflow_id:
                line.setdefault("workflow_id", info.workflow_id)
            line["activity"] = info.activity_type


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_format: Literal["text", "json"], *, process: Literal["api", "worker"]) -> None:
    """Set up the process's logging once, at its entry point (never in a library or a test).

    Text for the worker is the format it always had. Text for the API leaves uvicorn's own set-up
    alone (the access log prints itself, api/middleware.py). JSON sends the root logger and
    uvicorn's loggers to one JSON handler on stderr, and silences uvicorn's access log.
    """
    if log_format == "text":
        if process == "worker":
            logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # uvicorn's access log prints raw paths, rater tokens included; the app writes its own (route templates).
    logging.getLogger("uvicorn.access").disabled = True
