"""`lighthouse up` started as a subprocess, one per test module."""

from __future__ import annotations

import re
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
