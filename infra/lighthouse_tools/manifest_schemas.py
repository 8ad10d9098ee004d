"""schemas/manifests/<file>.schema.json, generated from the manifest models (a test keeps them in step)."""

from __future__ import annotations

import json
from pathlib import Path

from lighthouse.pipelines.manifests import MANIFEST_FILES, json_schema

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "manifests"


def render(file: str) -> str:
    return json.dumps(json_schema(file), indent=2, sort_keys=True) + "\n"


def path_of(file: str) -> Path:
    return SCHEMAS_DIR / f"{file.removesuffix('.yaml')}.schema.json"


def write() -> list[Path]:
    SCHEMAS_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for file in MANIFEST_FILES:
        path_of(file).write_text(render(file))
        written.append(path_of(file))
    return written
