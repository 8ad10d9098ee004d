"""Writes schemas/openapi.json from the routes the Chalice app declares (see lighthouse.api.openapi)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from lighthouse.api.openapi import build_openapi
from lighthouse_tools.template import PROJECT_ROOT

API_APP = PROJECT_ROOT / "functions" / "api" / "app.py"
OPENAPI_PATH = PROJECT_ROOT / "schemas" / "openapi.json"


def load_api_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_lighthouse_api_for_openapi", API_APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render() -> str:
    return json.dumps(build_openapi(load_api_module().endpoints.docs), indent=2, sort_keys=False) + "\n"


def write(path: Path = OPENAPI_PATH) -> None:
    path.write_text(render())
