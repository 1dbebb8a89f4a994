"""The OpenAPI document as the API really answers: one error shape, the statuses each route can give.

FastAPI documents a 422 it never sends here (the one error handler turns validation into 400) and none of
the errors the routes raise; this rewrites every operation's responses from the rules of API.md, so that
clients and schema-driven tests can rely on the document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM = {
    "type": "object",
    "description": "The one error shape of every failed call.",
    "required": ["title", "status", "detail"],
    "properties": {
        "title": {"type": "string", "description": "Stable, machine-readable name, e.g. NotFound."},
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
        "detail": {"type": "string", "description": "One sentence for a person: what went wrong, what to do."},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Per field (e.g. query.start, body.enabled), what is wrong with it.",
        },
    },
    "additionalProperties": False,
}
ERRORS = {
    "400": "ValidationError, or a business rule with its own title (e.g. BatteryCapacityRequired)",
    "401": "Unauthorized: no, bad or expired token",
    "404": "NotFound: no such entity, location or route",
    "409": "Conflict: another change to the same data was being saved",
    "413": "PayloadTooLarge: a JSON body over 1 MB",
    "429": "TooManyRequests: too many failed authentications; see Retry-After",
    "500": "InternalError: logged on the server, no trace in the reply",
}
TIME_PARAMETERS = {"start", "end"}


def _statuses(path: str, method: str, secured: bool) -> list[str]:
    statuses = ["400", "500"]
    if secured:
        statuses.append("401")
    if "{" in path:
        statuses.append("404")
    if method in ("post", "put", "patch", "delete"):
        statuses += ["409", "413"] if method != "delete" else ["409"]
    if path.endswith("/authentication"):
        statuses += ["401", "429"]
    return sorted(set(statuses))


def _rewrite(operation: dict[str, Any], path: str, method: str) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    declared = set(responses) & set(ERRORS)  # errors a route names itself, e.g. a 404 for a tariff named in the query
    for status in sorted(set(_statuses(path, method, bool(operation.get("security")))) | declared):
        responses[status] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status == "429":
            responses[status]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query" and parameter.get("name") in TIME_PARAMETERS:
            schema = parameter.setdefault("schema", {})
            for option in schema.get("anyOf", [schema]):
                if option.get("type") == "string":
                    option["format"] = "date-time"


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once, then cached on the app as FastAPI does)."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description, servers=app.servers
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas["Problem"] = PROBLEM
        for path, operations in spec.get("paths", {}).items():
            for method, operation in operations.items():
                _rewrite(operation, path, method)
        app.openapi_schema = spec
    return app.openapi_schema
