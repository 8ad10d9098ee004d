"""The platform the end-to-end tests drive, over HTTP with real clients.

`LIGHTHOUSE_TARGET` picks it: `embedded` (the default) starts `lighthouse up` as a subprocess, one per
test module; `endpoint` uses a stack already deployed with `lighthouse deploy` (MiniStack, LocalStack
or AWS), found through `LIGHTHOUSE_STATE_FILE` (what the deploy wrote), `LIGHTHOUSE_API_URL` and
`LIGHTHOUSE_AWS_ENDPOINT`. The same tests run on both. A test that checks the embedded process itself
is marked `embedded_only`; one that needs what an emulator lacks is marked `target_gap` with a key of
`TARGET_GAPS`, so the list of what does not run on a target is written down here and cannot grow unseen.
"""

from __future__ import annotations

import json
import os
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
TARGET = os.environ.get("LIGHTHOUSE_TARGET", "embedded")

# What a deployed target lacks: key -> (the target, why, where the minimal reproduction is).
TARGET_GAPS = {
    "fleet-mqtt-broker": (
        "ministack",
        "the fleet's MQTT broker on a deployed stack is IoT Core with the template's custom authorizer; "
        "MiniStack 1.5.33 has no AWS::IoT::Authorizer, so the stack deploys with FleetCustomAuthorizer=false "
        "and no IotEndpoint, and agents have no broker to connect to (localstack/ministack-notes.md, 3)",
    ),
    "timeout-seconds-path": (
        "ministack",
        "MiniStack 1.5.33 ignores TimeoutSecondsPath on .waitForTaskToken, so deadlines never fire "
        "(localstack/ministack-notes.md, 1)",
    ),
}


@dataclass
class Platform:
    process: subprocess.Popen[str] | None  # None on a deployed target
    state_file: Path
    api_url: str
    aws_endpoint_url: str | None
    output: list[str] = field(default_factory=list)

    @property
    def environment(self) -> dict[str, str]:
        """The stack's resources as the functions see them (table names, queue URL, ARNs)."""
        return dict(json.loads(self.state_file.read_text())["environment"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LIGHTHOUSE, "--state-file", str(self.state_file), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def aws(self, service: str) -> Any:
        if self.aws_endpoint_url is None:  # AWS itself: the caller's own credentials
            return boto3.client(service)  # type: ignore[call-overload]
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.aws_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        gap = item.get_closest_marker("target_gap")
        if gap is not None and gap.args[0] not in TARGET_GAPS:
            raise pytest.UsageError(f"{item.nodeid}: target_gap {gap.args[0]!r} is not in TARGET_GAPS")
        if TARGET == "embedded":
            continue
        only = item.get_closest_marker("embedded_only")
        if only is not None:
            item.add_marker(pytest.mark.skip(reason=f"embedded only: {only.args[0]}"))
        elif gap is not None and TARGET_GAPS[gap.args[0]][0] == deployed_target():
            item.add_marker(pytest.mark.skip(reason=f"target gap: {TARGET_GAPS[gap.args[0]][1]}"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TARGET == "embedded":
        return
    skipped = terminalreporter.stats.get("skipped", [])
    reasons = [str(report.longrepr[2]) for report in skipped if isinstance(report.longrepr, tuple)]
    gaps = sum(reason.startswith("Skipped: target gap") for reason in reasons)
    only = sum(reason.startswith("Skipped: embedded only") for reason in reasons)
    terminalreporter.write_line(
        f"target {deployed_target()} ({deployed_platform().api_url}): {gaps} skipped for a target gap, "
        f"{only} embedded-only"
    )


def deployed_target() -> str:
    """What `lighthouse deploy` found at the endpoint: aws, localstack or ministack."""
    return str(json.loads(Path(os.environ["LIGHTHOUSE_STATE_FILE"]).read_text())["target"])


def deployed_platform() -> Platform:
    state_file = Path(os.environ["LIGHTHOUSE_STATE_FILE"])
    state = json.loads(state_file.read_text())
    api_url = os.environ.get("LIGHTHOUSE_API_URL") or state["api_url"]
    endpoint = os.environ.get("LIGHTHOUSE_AWS_ENDPOINT") or state.get("aws_endpoint_url")
    return Platform(None, state_file, api_url.rstrip("/"), endpoint)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if TARGET == "endpoint":
        yield deployed_platform()
        return
    if TARGET != "embedded":
        pytest.fail(f"LIGHTHOUSE_TARGET={TARGET!r}: use embedded or endpoint")
    workdir = tmp_path_factory.mktemp("lighthouse-up")
    state_file = workdir / "local.json"
    process = subprocess.Popen(
        [LIGHTHOUSE, "--state-file", str(state_file), "up", "--api-port", "0", "--aws-port", "0", "--mqtt-port", "0"],
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
