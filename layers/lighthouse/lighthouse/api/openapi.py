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


def _success(route: RouteDoc, components: dict[str, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "success"}
    if route.status == 204:
        return success
    if route.content_type != "application/json":
        success["content"] = {route.content_type: {"schema": {"type": "string"}}}
        return success
    schema = _schema_ref(route.response_model, components) if route.response_model else {"type": "object"}
    success["content"] = {"application/json": {"schema": schema}}
    return success


def _error(code: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": REASONS.get(code, "error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if code == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return response


def _request_body(route: RouteDoc, components: dict[str, Any]) -> dict[str, Any]:
    assert route.body is not None
    # A body whose fields all have defaults may be left out: an empty body reads as {}.
    return {
        "required": bool(route.body.model_json_schema(mode="validation").get("required")),
        "description": f"strict UTF-8 JSON, at most {route.max_body} bytes",
        "content": {"application/json": {"schema": _schema_ref(route.body, components, "validation")}},
    }


def _description(route: RouteDoc) -> str:
    who = "anyone" if route.public else ("any agent" if route.roles == ROLES else " or ".join(route.roles))
    return f"Who: {who}." + (f" Which objects: {route.objects}." if route.objects else "")


def _parameters(route: RouteDoc) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": PATH_PATTERNS[name]}}
        for name in route.path_params
    ] + [query.openapi() for query in route.query]


def _operation(route: RouteDoc, components: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": route.summary,
        "description": _description(route),
        "operationId": route.method.lower()
        + "".join(c if c.isalnum() else "_" for c in route.path.replace("+}", "}")).rstrip("_"),
        "x-roles": [] if route.public else list(route.roles),
    }
    parameters = _parameters(route)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = _request_body(route, components)
        operation["x-max-body-bytes"] = route.max_body
    if not route.public:
        operation["security"] = [{"bearer": []}]
    operation["responses"] = {
        str(code): _success(route, components) if code == route.status else _error(code) for code in route.statuses
    }
    return operation


def build_openapi(routes: list[RouteDoc]) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda r: (r.path, r.method)):
        # OpenAPI names a greedy `{file_path+}` as the plain parameter `{file_path}`.
        paths.setdefault(route.path.replace("+}", "}"), {})[route.method.lower()] = _operation(route, components)
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
