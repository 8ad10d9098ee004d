"""Writes schemas/events/<TYPE>.json from the event models, and the two other published contracts made
from models: schemas/notifications/envelope.json (what the WebSocket API pushes) and schemas/flags.json
(the feature-flags document). Tests keep them in step."""

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


def render_contracts() -> dict[Path, str]:
    """{path: content} of the envelope and flags schemas."""
    from lighthouse.flags.logic import schema as flags_schema
    from lighthouse.push.models import envelope_schema

    return {
        PROJECT_ROOT / "schemas" / "notifications" / "envelope.json": json.dumps(envelope_schema(), indent=2) + "\n",
        PROJECT_ROOT / "schemas" / "flags.json": json.dumps(flags_schema(), indent=2) + "\n",
    }


def write(directory: Path = EVENT_SCHEMAS) -> list[Path]:
    for path, content in render_contracts().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render().items():
        path = directory / name
        path.write_text(content)
        written.append(path)
    for stale in set(directory.glob("*.json")) - set(written):
        stale.unlink()
    return written
