"""A small Docker Engine API server for tests: real HTTP over a unix socket, with fixture containers
and their logs (the subset `lighthouse agent-core` reads: list, inspect, logs in the multiplexed
stream format of a container without a TTY)."""

from __future__ import annotations

import json
import re
import socketserver
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FixtureContainer:
    id: str  # 64 hex characters, as Docker's
    name: str
    image: str
    state: str = "running"
    labels: dict[str, str] = field(default_factory=dict)
    ports: list[dict[str, Any]] = field(default_factory=list)
    logs: list[tuple[float, str, str]] = field(default_factory=list)  # (unix time, stdout|stderr, line)

    def summary(self) -> dict[str, Any]:
        return {
            "Id": self.id, "Names": [f"/{self.name}"], "Image": self.image, "State": self.state,
            "Status": "Up 1 hour" if self.state == "running" else "Exited (1)", "Labels": self.labels,
            "Ports": self.ports,
        }  # fmt: skip


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    containers: list[FixtureContainer]
    requests_seen: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def address_string(self) -> str:  # a unix socket has no client address
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _find(self, prefix: str) -> FixtureContainer | None:
        matches = [c for c in self.server.containers if c.id.startswith(prefix) or c.name == prefix]
        return matches[0] if len(matches) == 1 else None

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.requests_seen.append(parts.path)
        path = re.sub(r"^/v[0-9.]+", "", parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path == "/_ping":
            return self._send(200, b"OK", "text/plain")
        if path == "/containers/json":
            shown = [c for c in self.server.containers if query.get("all") in ("1", "true") or c.state == "running"]
            return self._send(200, json.dumps([c.summary() for c in shown]).encode())
        found = re.fullmatch(r"/containers/([^/]+)/(json|logs)", path)
        container = self._find(found.group(1)) if found else None
        if found is None:
            return self._send(404, b'{"message": "page not found"}')
        if container is None:
            return self._send(404, json.dumps({"message": f"No such container: {found.group(1)}"}).encode())
        if found.group(2) == "json":
            inspect = {**container.summary(), "Name": f"/{container.name}", "Config": {"Tty": False}}
            return self._send(200, json.dumps(inspect).encode())
        return self._send(200, _logs(container, query), "application/vnd.docker.multiplexed-stream")


def _logs(container: FixtureContainer, query: dict[str, str]) -> bytes:
    since = float(query.get("since") or 0)
    lines = [entry for entry in container.logs if entry[0] >= since]
    tail = query.get("tail", "all")
    if tail != "all":
        lines = lines[-int(tail) :] if int(tail) else []
    frames = b""
    for at, stream, text in lines:
        import datetime

        stamp = datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ ")
        payload = ((stamp if query.get("timestamps") in ("1", "true") else "") + text + "\n").encode()
        frames += struct.pack(">BxxxL", 1 if stream == "stdout" else 2, len(payload)) + payload
    return frames


class DockerEngine:
    """The server on `socket_path`, in a thread, until `close()`."""

    def __init__(self, socket_path: Path, containers: list[FixtureContainer]) -> None:
        self.socket_path = socket_path
        self._server = _Server(str(socket_path), _Handler)
        self._server.containers = containers
        self._server.requests_seen = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="docker-engine")
        self._thread.start()

    @property
    def requests_seen(self) -> list[str]:
        return self._server.requests_seen

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)
