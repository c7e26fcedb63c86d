"""Watches a whole test run for answers the published OpenAPI schema does not describe.

tests/support/services.py's ``api_client`` installs ``CONFORMANCE.hook(app)`` on every test client: each answer to
an operation of the schema is checked as it arrives — its status must be documented for that
operation, and a JSON body must be valid against the documented schema (with ``jsonschema``). At the
end of the session any mismatch fails the run, naming the operation, status and reason.
Routes outside the schema (the rater's HTML pages, /docs) are not checked.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from jsonschema import Draft202012Validator


@dataclass
class ConformanceWatch:
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    _schema: dict[str, Any] | None = None
    _validators: dict[tuple[str, str, str], Draft202012Validator | None] = field(default_factory=dict)

    def operation_of(self, app: FastAPI, method: str, path: str) -> str | None:
        """The schema path template of the operation that answers (method, path), if it is in the schema."""
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            if method in (route.methods or ()) and route.path_regex.match(path):
                return route.path_format
        return None

    def _validator(
        self, schema: dict[str, Any], template: str, method: str, status: str
    ) -> Draft202012Validator | None:
        key = (template, method, status)
        if key not in self._validators:
            response = schema["paths"][template][method.lower()]["responses"][status]
            body_schema = response.get("content", {}).get("application/json", {}).get("schema")
            # The response's schema refers to #/components/...: give it the components to resolve against.
            self._validators[key] = (
                Draft202012Validator({**body_schema, "components": schema.get("components", {})})
                if body_schema
                else None
            )
        return self._validators[key]

    def check(self, app: FastAPI, method: str, path: str, status: int, content_type: str, body: bytes) -> str | None:
        """Why this answer does not match the schema, or None when it does (or is outside the schema)."""
        template = self.operation_of(app, method, path)
        if template is None:
            return None
        # Every app of the run is built by create_app, so one schema serves them all.
        schema = self._schema = self._schema or app.openapi()
        operation = schema["paths"][template][method.lower()]
        where = f"{method} {template} → {status}"
        self.checked += 1
        if str(status) not in operation["responses"]:
            return f"{where}: status not documented (documented: {', '.join(operation['responses'])})"
        validator = self._validator(schema, template, method, str(status))
        if validator is None or not body:
            return None
        if not content_type.startswith("application/json"):
            return f"{where}: documented as JSON, answered {content_type}"
        errors = sorted(validator.iter_errors(json.loads(body)), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            return f"{where}: body does not match the schema at {list(first.absolute_path)}: {first.message[:200]}"
        return None

    def hook(self, app: FastAPI) -> Callable[[httpx.Response], Awaitable[None]]:
        """An httpx response event hook checking every answer of this app."""

        async def on_response(response: httpx.Response) -> None:
            await response.aread()
            problem = self.check(
                app,
                response.request.method,
                response.request.url.path,
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
            )
            if problem:
                self.problems.append(problem)

        return on_response


CONFORMANCE = ConformanceWatch()
