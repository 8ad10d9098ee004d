"""A local cloud for the security probes: limits raised so probes measure behaviour, not budgets
(the budgets themselves are probed on their own), and one signed-in agent per role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from lighthouse.composition import Components
from lighthouse_tools.localcloud.cloud import LocalCloud, LocalCloudOptions
from tests.helpers import signed_session_body

ROLES = ("agent", "expert", "human", "admin")
RELAXED = {
    "LIGHTHOUSE_REQUESTS_PER_MINUTE": "1000000",
    "LIGHTHOUSE_REQUEST_BURST": "1000000",
    "LIGHTHOUSE_VALIDATIONS_PER_MINUTE": "1000000",
    "LIGHTHOUSE_VALIDATION_BURST": "1000000",
    "LIGHTHOUSE_ELICITATION_CREATES_PER_MINUTE": "1000000",
    "LIGHTHOUSE_ELICITATION_RESPONSES_PER_MINUTE": "1000000",
    "LIGHTHOUSE_ELICITATION_BURST": "1000000",
    "LIGHTHOUSE_HEARTBEATS_PER_MINUTE": "1000000",
    "LIGHTHOUSE_SESSIONS_PER_MINUTE": "1000000",
    "LIGHTHOUSE_RATE_LIMIT_BURST": "1000000",
}


@dataclass
class Platform:
    cloud: LocalCloud
    api_url: str
    parts: Components
    secrets: dict[str, str] = field(default_factory=dict)  # agent id -> secret
    tokens: dict[str, str] = field(default_factory=dict)  # role -> bearer token of "probe-<role>"

    def sign_in(self, agent_id: str) -> str:
        response = requests.post(
            f"{self.api_url}/sessions", json=signed_session_body(agent_id, self.secrets[agent_id]), timeout=30
        )
        response.raise_for_status()
        return str(response.json()["token"])

    def register(self, agent_id: str, role: str, projects: list[str] | None = None) -> str:
        self.secrets[agent_id] = self.parts.agents.register(agent_id, role, projects=projects).secret  # type: ignore[arg-type]
        return self.sign_in(agent_id)


@contextmanager
def running_platform(relaxed: bool = True) -> Iterator[Platform]:
    cloud = LocalCloud(LocalCloudOptions(api_port=0, aws_port=0, start_schedules=False)).start()
    try:
        if relaxed:
            cloud.reconfigure(dict(RELAXED))  # the cloud restores the environment when it stops
        platform = Platform(cloud, cloud.api_url, cloud.components())
        for role in ROLES:
            platform.tokens[role] = platform.register(f"probe-{role}", role, projects=["probed"])
        yield platform
    finally:
        cloud.stop()
