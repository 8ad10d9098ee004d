"""The CLI's client keeps the operator's token for the next command, and signs in again when the
API no longer takes it (a loopback HTTP server stands in for the API)."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lighthouse_tools.client import LighthouseClient


class FakeApi(BaseHTTPRequestHandler):
    sign_ins: list[str] = []
    valid: set[str] = set()

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        token = f"token-{len(FakeApi.sign_ins)}"
        FakeApi.sign_ins.append(token)
        FakeApi.valid.add(token)
        self._reply(201, {"token": token, "expires_at": 4_000_000_000})

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in FakeApi.valid:
            self._reply(200, {"agents": []})
        else:
            self._reply(401, {"error": {"code": "UNAUTHORIZED", "message": "bad token"}})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    FakeApi.sign_ins, FakeApi.valid = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_commands_share_one_sign_in_through_the_session_file(api: str, tmp_path: Path) -> None:
    kept = tmp_path / "operator.session.json"
    for _ in range(5):  # five CLI commands, five processes
        LighthouseClient(api, "lighthouse-operator", "secret", session_file=kept).request("GET", "/agents")

    assert FakeApi.sign_ins == ["token-0"]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_a_token_the_api_refuses_is_dropped_and_the_client_signs_in_again(api: str, tmp_path: Path) -> None:
    kept = tmp_path / "operator.session.json"
    LighthouseClient(api, "lighthouse-operator", "secret", session_file=kept).request("GET", "/agents")
    FakeApi.valid.clear()  # revoked, or a new platform

    LighthouseClient(api, "lighthouse-operator", "secret", session_file=kept).request("GET", "/agents")

    assert FakeApi.sign_ins == ["token-0", "token-1"]
    assert json.loads(kept.read_text())["token"] == "token-1"


@pytest.mark.parametrize("content", ["not json", "[]", '{"api_url": "http://elsewhere", "token": "x"}'])
def test_an_unreadable_or_foreign_session_file_is_ignored(api: str, tmp_path: Path, content: str) -> None:
    kept = tmp_path / "operator.session.json"
    kept.write_text(content)

    LighthouseClient(api, "lighthouse-operator", "secret", session_file=kept).request("GET", "/agents")

    assert FakeApi.sign_ins == ["token-0"]


def test_without_a_session_file_each_client_signs_in(api: str) -> None:
    for _ in range(2):
        LighthouseClient(api, "agent", "secret").request("GET", "/agents")
    assert len(FakeApi.sign_ins) == 2
