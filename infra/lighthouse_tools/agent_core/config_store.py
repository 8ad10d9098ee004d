"""The core's runtime configuration: validated keys only, written atomically, cached in memory."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lighthouse.fleet.contract import ConfigChange
from lighthouse_tools.agent_core.files import read_json, write_json_atomically

DEFAULTS: dict[str, Any] = {"telemetry_enabled": True, "heartbeat_s": 30, "log_level": "INFO"}


class ConfigError(ValueError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def validation_reasons(change: dict[str, Any]) -> list[str]:
    """Why `change` may not be applied (empty: it may). Unknown keys and bad values both count."""
    try:
        ConfigChange.model_validate(change)
    except ValidationError as error:
        return [
            f"{'.'.join(str(p) for p in e['loc']) or 'set'}: "
            + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
            for e in error.errors()
        ]
    return [f"{key}: may not be null" for key, value in change.items() if value is None]


class ConfigStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._cached: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        """The configuration, read from disk once and then from memory."""
        with self._lock:
            if self._cached is None:
                stored = read_json(self._path, {})
                stored = {k: v for k, v in stored.items() if k in DEFAULTS and not validation_reasons({k: v})}
                self._cached = {**DEFAULTS, **stored}
            return dict(self._cached)

    def apply(self, change: dict[str, Any]) -> dict[str, Any]:
        """Validate the whole change, then write it; a change with any bad key changes nothing."""
        reasons = validation_reasons(change)
        if reasons:
            raise ConfigError(reasons)
        current = self.get()
        updated = {**current, **change}
        with self._lock:
            write_json_atomically(self._path, updated)
            self._cached = updated
        return {key: value for key, value in change.items() if current.get(key) != value}
