"""Writes schemas/events/<TYPE>.json from the event models (a test keeps them in step)."""

from __future__ import annotations

import json
from pathlib import Path

from lighthouse.events.types import json_schema, load_catalog
from lighthouse_tools.template import PROJECT_ROOT

EVENT_SCHEMAS = PROJECT_ROOT / "schemas" / "events"


def render() -> dict[str, str]:
    """{file name: content} for every declared event type."""
    return {
        f"{name}.json": json.dumps(json_schema(cls), indent=2, sort_keys=True) + "\n"
        for name, cls in sorted(load_catalog().items())
        if not name.startswith("TEST_")
    }


def write(directory: Path = EVENT_SCHEMAS) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render().items():
        path = directory / name
        path.write_text(content)
        written.append(path)
    for stale in set(directory.glob("*.json")) - set(written):
        stale.unlink()
    return written
