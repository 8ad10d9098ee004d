"""`lighthouse up` as a subprocess, driven over HTTP as a new agent would, and with boto3 against the
AWS endpoint it prints."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.helpers import signed_session_body

pytestmark = pytest.mark.e2e

LIGHTHOUSE = str(Path(sys.executable).parent / "lighthouse")
READY_TIMEOUT = 60


@dataclass
class Platform:
    process: subprocess.Popen[str]
    state_file: Path
    api_url: str
    aws_endpoint_url: str
    output: list[str] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LIGHTHOUSE, "--state-file", str(self.state_file), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def aws(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.aws_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="anything",
            aws_secret_access_key="anything",
        )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("lighthouse-up")
    state_file = workdir / "local.json"
    process = subprocess.Popen(
        [LIGHTHOUSE, "--state-file", str(state_file), "up", "--api-port", "0", "--aws-port", "0"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=(workdir / "stderr.log").open("w"),
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(READY_TIMEOUT):
        process.kill()
        pytest.fail(f"lighthouse up did not become ready: {''.join(lines)}{(workdir / 'stderr.log').read_text()}")
    text = "".join(lines)
    api = re.search(r"API:\s+(http://\S+)", text)
    aws = re.search(r"AWS endpoint:\s+(http://\S+)", text)
    assert api, text
    assert aws, text
    platform = Platform(process, state_file, api.group(1), aws.group(1), lines)
    yield platform
    if process.poll() is None:
        process.kill()
        process.wait(10)


def open_session(platform: Platform, agent_id: str, secret: str) -> str:
    response = requests.post(f"{platform.api_url}/sessions", json=signed_session_body(agent_id, secret), timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_it_prints_both_endpoints_and_reports_healthy(platform: Platform) -> None:
    health = requests.get(f"{platform.api_url}/health", timeout=10)

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert json.loads(platform.state_file.read_text())["api_url"] == platform.api_url


def test_a_new_agent_registers_signs_in_heartbeats_and_is_listed(platform: Platform) -> None:
    added = platform.cli("agents", "add", "e2e-alice", "--role", "expert", "--json")
    assert added.returncode == 0, added.stderr
    secret = json.loads(added.stdout)["secret"]

    token = open_session(platform, "e2e-alice", secret)
    headers = {"Authorization": f"Bearer {token}"}
    beat = requests.post(f"{platform.api_url}/agents/heartbeat", json={"status": "busy"}, headers=headers, timeout=10)
    assert beat.status_code == 200, beat.text

    def online() -> dict[str, Any] | None:
        view = requests.get(f"{platform.api_url}/agents/e2e-alice", headers=headers, timeout=10).json()
        return view if view.get("presence") == "online" else None

    view = wait_for(online)
    assert (view["role"], view["status"]) == ("expert", "busy")
    listed = requests.get(f"{platform.api_url}/agents", headers=headers, timeout=10).json()["agents"]
    assert "e2e-alice" in {agent["agent_id"] for agent in listed}


def test_the_session_command_prints_a_working_token(platform: Platform) -> None:
    secret = json.loads(platform.cli("agents", "add", "e2e-bob", "--json").stdout)["secret"]

    session = platform.cli("session", "e2e-bob", "--secret", secret)

    assert session.returncode == 0, session.stderr
    token = session.stdout.strip()
    response = requests.get(f"{platform.api_url}/agents", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200


def test_bad_requests_get_precise_errors(platform: Platform) -> None:
    no_token = requests.get(f"{platform.api_url}/agents", timeout=10)
    bad_signature = requests.post(
        f"{platform.api_url}/sessions",
        json={
            "agent_id": "e2e-alice",
            "timestamp": int(time.time()),
            "nonce": "ab" * 16,
            "signature": "0" * 64,
        },
        timeout=10,
    )
    bad_body = requests.post(f"{platform.api_url}/sessions", data="{oops", timeout=10)

    assert (no_token.status_code, no_token.json()["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert bad_signature.status_code == 401
    assert bad_body.status_code == 400


def test_registering_an_existing_agent_fails_clearly(platform: Platform) -> None:
    platform.cli("agents", "add", "e2e-carol")

    again = platform.cli("agents", "add", "e2e-carol")

    assert again.returncode == 1
    assert "already registered" in again.stderr


def test_boto3_against_the_printed_endpoint_sees_the_template_and_feeds_the_queue(platform: Platform) -> None:
    tables = platform.aws("dynamodb").list_tables()["TableNames"]
    assert "lighthouse-EventsTable" in tables
    secret = json.loads(platform.cli("agents", "add", "e2e-dave", "--json").stdout)["secret"]
    token = open_session(platform, "e2e-dave", secret)
    sqs = platform.aws("sqs")
    queue_url = sqs.get_queue_url(QueueName="lighthouse-PresenceQueue")["QueueUrl"]

    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"token": token, "status": "idle"}))

    headers = {"Authorization": f"Bearer {token}"}
    wait_for(
        lambda: (
            requests.get(f"{platform.api_url}/agents/e2e-dave", headers=headers, timeout=10).json().get("presence")
            == "online"
        )
    )


def test_ctrl_c_shuts_down_cleanly(platform: Platform) -> None:
    platform.process.send_signal(signal.SIGINT)

    assert platform.process.wait(timeout=30) == 0
    time.sleep(0.2)
    assert "Stopped." in "".join(platform.output)
    assert not platform.state_file.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{platform.api_url}/health", timeout=2)
