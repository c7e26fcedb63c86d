"""The published OpenAPI schema, made to match every answer the API really gives.

FastAPI documents 422 as a list (``HTTPValidationError``) and no other error at all. Here every
error is ``ErrorBody``, and each operation lists the error statuses it can give:

- every operation: 413 (body limit), 422 (validation; NUL in the query string), 500, 503 (database);
- 400 where there is a request body (an unparsable form or JSON);
- 401 where a staff token or API key is required, 403 where the admin role is checked;
- 404 where a path id or code is looked up;
- 403, 404, 409 on the case actions;
- 429 (and the login's 401) on the public, rate-limited routes.

Statuses a route declares itself (``responses=``) are kept as they are; they only gain the
``ErrorBody`` content when they declared none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from api import deps
from api.errors import STATUS_DESCRIPTIONS, ErrorBody
from api.rate_limit import PUBLIC_PREFIXES

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_EVERYWHERE = {413, 422, 500, 503}
_AUTHENTICATED = {deps.current_user, deps.current_api_client, deps.current_user_or_api_client}
_ROLE_CHECKED = {deps.current_admin}
# Path parameters that are not looked up in the database, so never a 404.
_NOT_LOOKED_UP = {"year"}
LOGIN_PATH = "/api/v1/auth/token"


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def error_statuses(route: RouteContext, method: str) -> set[int]:
    """The error statuses an operation can answer with, by what the route depends on and where it is."""
    statuses = set(_EVERYWHERE)
    calls = set(_calls(route.dependant))
    if route.body_field is not None:
        statuses.add(400)
    if calls & _AUTHENTICATED:
        statuses.add(401)
    if calls & _ROLE_CHECKED:
        statuses.add(403)
    if {p.name for p in route.dependant.path_params} - _NOT_LOOKED_UP:
        statuses.add(404)
    if route.endpoint.__module__ == "api.cases.actions" and method == "POST":
        statuses |= {403, 404, 409}
    assert route.path_format is not None  # every route context here is an APIRoute's
    if route.path_format.startswith(PUBLIC_PREFIXES):
        statuses.add(429)
    if route.path_format == LOGIN_PATH:
        statuses.add(401)
    return statuses


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": STATUS_DESCRIPTIONS.get(status, "Error"),
        "content": {"application/json": {"schema": dict(ERROR_REF)}},
    }


def _replace_validation_refs(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("$ref") == "#/components/schemas/HTTPValidationError":
            return dict(ERROR_REF)
        return {k: _replace_validation_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_validation_refs(v) for v in node]
    return node


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    schema = _replace_validation_refs(schema)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorBody"] = error_schema

    # Included routers are nested (FastAPI's RouteContext): walk the flattened, prefixed view.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(route, method)):
                responses.setdefault(str(status), _error_response(status))
            for status, declared in responses.items():
                if status.isdigit() and int(status) >= 400 and not declared.get("content"):
                    declared["content"] = _error_response(int(status))["content"]
            # Keep the listing in status order: easier to read in /docs.
            operation["responses"] = dict(sorted(responses.items()))
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema
