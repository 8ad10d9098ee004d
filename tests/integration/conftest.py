"""The embedded local cloud, in-process, shared by the integration tests of a module."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from lighthouse.composition import Components
from lighthouse_tools.localcloud.cloud import LocalCloud, LocalCloudOptions
from tests.helpers import signed_session_body

pytestmark = pytest.mark.integration

# Schedules and visibility timeouts run 50x faster; heartbeats are expected every second.
TIME_SCALE = 0.02
HEARTBEAT_INTERVAL = 1


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    options = LocalCloudOptions(
        aws_port=0,
        api_port=0,
        time_scale=TIME_SCALE,
        parameter_overrides={"HeartbeatIntervalSeconds": str(HEARTBEAT_INTERVAL)},
    )
    with LocalCloud(options) as running:
        yield running


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns a truthy value; fail with its last result."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last result: {last!r}")


class AgentClient:
    """An agent as a program would be: it holds its secret and talks HTTP."""

    def __init__(self, api_url: str, agent_id: str, secret: str) -> None:
        self.api_url = api_url
        self.agent_id = agent_id
        self.http = requests.Session()
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
        response = self.http.post(
            f"{api_url}/sessions", data=json.dumps(signed_session_body(agent_id, secret)), timeout=10
        )
        assert response.status_code == 201, response.text
        self.token = response.json()["token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path: str) -> requests.Response:
        return self.http.get(f"{self.api_url}{path}", timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.http.post(f"{self.api_url}{path}", data=json.dumps(body), timeout=10)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.http.put(f"{self.api_url}{path}", data=json.dumps(body), timeout=10)


@pytest.fixture(scope="module")
def parts(cloud: LocalCloud) -> Components:
    return cloud.components()


@pytest.fixture
def new_agent(cloud: LocalCloud, parts: Components) -> Callable[..., AgentClient]:
    def register(role: str = "agent") -> AgentClient:
        agent_id = f"agent-{secrets.token_hex(4)}"
        registration = parts.agents.register(agent_id, role)  # type: ignore[arg-type]
        return AgentClient(cloud.api_url, agent_id, registration.secret)

    return register
