"""The fleet across a `lighthouse up` that is killed and started again on its data directory: the
broker dies with it (no orphan holding the port), comes back with its accounts, and a running
`lighthouse agent-core` reconnects by itself and takes commands again."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from tests.fleet_helpers import AgentCore
from tests.integration.platform import UpProcess, eventually

pytestmark = pytest.mark.integration


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_killed_lighthouse_up_takes_its_broker_along_and_cores_reconnect_after_the_restart(tmp_path: Path) -> None:
    up = UpProcess(tmp_path, tmp_path / "data")
    up.start()
    core = None
    try:
        operator = up.operator()
        added = operator.call("POST", "/agents", {"agent_id": "durable-core", "role": "agent"})
        assert added.status_code == 201, added.text
        core = AgentCore(Path(sys.executable), "durable-core", added.json()["secret"], up.api_url, tmp_path / "core")

        def online() -> bool:
            response = operator.call("GET", "/fleet/agents/durable-core")
            return response.status_code == 200 and response.json()["presence"] == "online"

        eventually(online)
        mqtt_port = int(json.loads(up.state_file.read_text())["mqtt_url"].rsplit(":", 1)[1])
        api_port = int(up.api_url.rsplit(":", 1)[1])
        # WHEN lighthouse up is killed: its mosquitto goes with it
        up.kill()
        eventually(lambda: not _listening(mqtt_port), timeout=10)
        # WHEN it starts again on the same data directory and ports
        up.start("--api-port", str(api_port), "--mqtt-port", str(mqtt_port))
        operator = up.operator()
        # THEN the core, which kept running, reconnects with its kept account and answers commands
        eventually(lambda: _listening(mqtt_port))
        sent = operator.call("POST", "/fleet/agents/durable-core/commands", {"type": "refresh"})
        assert sent.status_code == 202, sent.text
        view = operator.call("GET", f"/fleet/commands/{sent.json()['request_id']}?wait=20").json()
        assert view["status"] == "succeeded", view
    finally:
        if core is not None:
            core.stop()
        up.stop_quietly()
