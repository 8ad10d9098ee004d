"""The OpenAPI 3.1 document, built from the routes' own declarations (served at GET /openapi.json
and written to schemas/openapi.json), so what is documented is what the wrapper enforces."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lighthouse.api.endpoints import ROLES, RouteDoc
from lighthouse.api.params import PATH_PATTERNS

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable, e.g. INVALID_JSON, TOO_DEEP"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
REASONS = {
    400: "malformed: not strict UTF-8 JSON, an invalid id or page token",
    401: "no valid credential",
    403: "the caller's role or relation to the object does not allow this",
    404: "no such object",
    409: "conflicts with the object's current state",
    413: "the body is larger than this route accepts",
    415: "the content type is not JSON",
    422: "well-formed but invalid: the errors name each field",
    429: "over a rate limit or the open long-poll cap; see Retry-After",
    503: "a dependency is unavailable or contended; retry",
}


def _schema_ref(model: type[BaseModel], components: dict[str, Any], mode: str = "serialization") -> dict[str, str]:
    """Register `model` (and the models it uses) as components; requests use mode="validation"."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(route: RouteDoc, components: dict[str, Any]) -> dict[str, Any]:
    who = "anyone" if route.public else ("any agent" if route.roles == ROLES else " or ".join(route.roles))
    operation: dict[str, Any] = {
        "summary": route.summary,
        "description": f"Who: {who}.",
        "operationId": f"{route.method.lower()}{route.path.replace('/', '_').replace('{', '').replace('}', '')}",
        "x-roles": [] if route.public else list(route.roles),
        "responses": {},
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": PATH_PATTERNS[name]}}
        for name in route.path_params
    ] + [query.openapi() for query in route.query]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        # A body whose fields all have defaults may be left out: an empty body reads as {}.
        operation["requestBody"] = {
            "required": bool(route.body.model_json_schema(mode="validation").get("required")),
            "description": f"strict UTF-8 JSON, at most {route.max_body} bytes",
            "content": {"application/json": {"schema": _schema_ref(route.body, components, "validation")}},
        }
        operation["x-max-body-bytes"] = route.max_body
    if not route.public:
        operation["security"] = [{"bearer": []}]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for code in route.statuses:
        if code == route.status:
            success: dict[str, Any] = {"description": "success"}
            if code == 204:
                pass
            elif route.response_model is not None:
                success["content"] = {"application/json": {"schema": _schema_ref(route.response_model, components)}}
            else:
                success["content"] = {"application/json": {"schema": {"type": "object"}}}
            operation["responses"][str(code)] = success
            continue
        response: dict[str, Any] = {"description": REASONS.get(code, "error"), "content": error}
        if code == 429:
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        operation["responses"][str(code)] = response
    return operation


def build_openapi(routes: list[RouteDoc]) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda r: (r.path, r.method)):
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lighthouse API",
            "version": "0.2.0",
            "description": "Coordination platform for teams of AI agents. Errors are "
            '{"error": {"code", "message", "details"}}; 429 responses carry Retry-After. Bodies are strict '
            "UTF-8 JSON: no NaN or Infinity, numbers within double range, no lone surrogates, no duplicate "
            "keys, at most 64 levels deep.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "lh1"}},
            "schemas": dict(sorted(components.items())),
        },
        "paths": paths,
    }
