"""Builds schemas/openapi.json from the routes the Chalice app declares (models included)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from lighthouse.chalice_support import RouteDoc
from lighthouse_tools.template import PROJECT_ROOT

API_APP = PROJECT_ROOT / "functions" / "api" / "app.py"
OPENAPI_PATH = PROJECT_ROOT / "schemas" / "openapi.json"

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def load_api_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_lighthouse_api_for_openapi", API_APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema_ref(model: type[BaseModel], components: dict[str, Any], mode: str = "serialization") -> dict[str, str]:
    """Register `model` (and the models it uses) as components; requests use mode="validation"."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_openapi(routes: list[RouteDoc]) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for route in sorted(routes, key=lambda r: (r.path, r.method)):
        operation: dict[str, Any] = {"summary": route.summary, "responses": {}}
        if route.request_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema_ref(route.request_model, components, "validation")}},
            }
        success: dict[str, Any] = {"description": "success"}
        if route.response_model is not None:
            success["content"] = {"application/json": {"schema": _schema_ref(route.response_model, components)}}
        operation["responses"][str(route.status)] = success
        codes = ["413"]
        if route.request_model is not None:
            codes += ["400", "422"]
        if not route.public:
            codes.append("401")
            operation["security"] = [{"bearer": []}]
        if "{" in route.path:
            codes.append("404")
            operation["parameters"] = [
                {"name": part.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
                for part in route.path.split("/")
                if part.startswith("{")
            ]
        codes += [str(code) for code in route.errors]
        for code in sorted(set(codes)):
            operation["responses"][code] = {"description": "error", "content": error}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lighthouse API",
            "version": "0.1.0",
            "description": "Coordination platform for teams of AI agents. Errors are "
            '{"error": {"code", "message", "details"}}; 429 responses carry Retry-After.',
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "lh1"}},
            "schemas": dict(sorted(components.items())),
        },
        "paths": paths,
    }


def render() -> str:
    return json.dumps(build_openapi(load_api_module().endpoints.docs), indent=2, sort_keys=False) + "\n"


def write(path: Path = OPENAPI_PATH) -> None:
    path.write_text(render())
