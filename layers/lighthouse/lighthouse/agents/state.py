"""The agent stream: event types, the folded state, and the read-model projection."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lighthouse.events.model import StoredEvent

AGENT_REGISTERED = "AGENT_REGISTERED"
AGENT_HEARTBEAT = "AGENT_HEARTBEAT"
AGENT_WENT_OFFLINE = "AGENT_WENT_OFFLINE"
AGENT_PROJECTS_SET = "AGENT_PROJECTS_SET"
AGENT_EVENT_TYPES = frozenset({AGENT_REGISTERED, AGENT_HEARTBEAT, AGENT_WENT_OFFLINE, AGENT_PROJECTS_SET})


def stream_id(agent_id: str) -> str:
    return f"agent#{agent_id}"


@dataclass
class AgentState:
    agent_id: str = ""
    role: str = ""
    salt: str = ""
    registered_at: float = 0.0
    online: bool = False
    status: str | None = None
    last_seen: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    projects: list[str] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.agent_id)


class AgentReducer:
    # v2: agents belong to projects (snapshots of v1 lack them and are rebuilt).
    name = "agent-v2"

    def initial(self) -> AgentState:
        return AgentState()

    def apply(self, state: AgentState, event: StoredEvent) -> AgentState:
        data = event.data
        if event.type == AGENT_REGISTERED:
            return AgentState(
                agent_id=data["agent_id"],
                role=data["role"],
                salt=data["salt"],
                registered_at=float(data["registered_at"]),
                metadata=dict(data.get("metadata", {})),
                projects=list(data.get("projects", [])),
            )
        if event.type == AGENT_HEARTBEAT:
            state.online = True
            state.status = data.get("status")
            state.last_seen = float(data["at"])
            state.metadata = {**state.metadata, **data.get("metadata", {})}
        elif event.type == AGENT_WENT_OFFLINE:
            state.online = False
        elif event.type == AGENT_PROJECTS_SET:
            state.projects = list(data["projects"])
        return state

    def to_snapshot(self, state: AgentState) -> dict[str, Any]:
        return asdict(state)

    def from_snapshot(self, data: dict[str, Any]) -> AgentState:
        return AgentState(**data)


class AgentDirectoryProjection:
    """Read model `agents`: one document per agent, what GET /agents serves."""

    name = "agents"

    def handles(self, event: StoredEvent) -> bool:
        return event.type in AGENT_EVENT_TYPES

    def locate(self, event: StoredEvent) -> tuple[str, str]:
        return self.name, event.stream_id.removeprefix("agent#")

    def apply(self, document: dict[str, Any] | None, event: StoredEvent) -> dict[str, Any] | None:
        data = event.data
        if event.type == AGENT_REGISTERED:
            return {
                "agent_id": data["agent_id"],
                "role": data["role"],
                "presence": "offline",
                "status": None,
                "last_seen": None,
                "registered_at": data["registered_at"],
                "metadata": data.get("metadata", {}),
                "projects": data.get("projects", []),
            }
        if document is None:
            return None
        if event.type == AGENT_HEARTBEAT:
            document.update(presence="online", status=data.get("status"), last_seen=data["at"])
            document["metadata"] = {**document.get("metadata", {}), **data.get("metadata", {})}
        elif event.type == AGENT_WENT_OFFLINE:
            document.update(presence="offline", went_offline_at=data["at"])
        elif event.type == AGENT_PROJECTS_SET:
            document["projects"] = list(data["projects"])
        return document
