"""Writes schemas/openapi.json from the routes the Chalice app declares (see lighthouse.api.openapi)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from lighthouse.api.endpoints import ROLES, RouteDoc
from lighthouse.api.openapi import build_openapi
from lighthouse_tools.template import PROJECT_ROOT

API_APP = PROJECT_ROOT / "functions" / "api" / "app.py"
OPENAPI_PATH = PROJECT_ROOT / "schemas" / "openapi.json"
README_PATH = PROJECT_ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- routes:start -->", "<!-- routes:end -->"


def load_api_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_lighthouse_api_for_openapi", API_APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def render() -> str:
    return json.dumps(build_openapi(load_api_module().endpoints.docs), indent=2, sort_keys=False) + "\n"


def who(route: RouteDoc) -> str:
    if route.public:
        return "anyone"
    return "any agent" if route.roles == ROLES else ", ".join(route.roles)


def routes_table(routes: list[RouteDoc]) -> str:
    """The README's table of every route: who may call it, its body limit, what it does."""
    lines = [
        "| route | who | which objects | body | what |",
        "| --- | --- | --- | --- | --- |",
    ]
    for route in sorted(routes, key=lambda r: (r.path, r.method)):
        body = f"{route.max_body // 1024} KiB" if route.body is not None else "-"
        objects = route.objects or "-"
        path = route.path.replace("+}", "}")  # a greedy parameter, named as OpenAPI names it
        lines.append(f"| `{route.method} {path}` | {who(route)} | {objects} | {body} | {route.summary} |")
    return "\n".join(lines) + "\n"


def readme_with_table(readme: str, routes: list[RouteDoc]) -> str:
    head, rest = readme.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{routes_table(routes)}{TABLE_END}{tail}"


def write(path: Path = OPENAPI_PATH, readme: Path = README_PATH) -> None:
    path.write_text(render())
    docs = load_api_module().endpoints.docs
    readme.write_text(readme_with_table(readme.read_text(), docs))
