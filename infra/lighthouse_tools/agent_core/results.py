"""Results kept by request id, so a repeated command gets its first result again and changes nothing."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from lighthouse_tools.agent_core.files import read_json, write_json_atomically


class ResultStore:
    """One file per request id (hashed: ids come off the network) under `<state>/results/`."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._lock = threading.Lock()

    def _path(self, request_id: str) -> Path:
        return self._directory / f"{hashlib.sha256(request_id.encode()).hexdigest()[:32]}.json"

    def get(self, request_id: str) -> dict[str, Any] | None:
        stored = read_json(self._path(request_id), None)
        if stored is None or stored.get("request_id") != request_id:
            return None
        return dict(stored["result"])

    def put(self, request_id: str, result: dict[str, Any]) -> None:
        with self._lock:
            write_json_atomically(self._path(request_id), {"request_id": request_id, "result": result})
